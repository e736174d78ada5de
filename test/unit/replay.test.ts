import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import protos from '@temporalio/proto';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { jobKindNames } from '../../src/jobs';

/**
 * Determinism guard: histories recorded from real runs of each workflow type (npm run
 * record-histories) replay against the current workflow code. A change that would break the runs
 * in flight when it is deployed fails here; guard it with patched() (README: Changing workflow code).
 */
const dir = path.resolve(import.meta.dirname, '../replay/histories');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
// npm test has bundled the workflows once already; on their own these tests bundle them here.
const bundle = process.env.BATCHFLOW_WORKFLOW_BUNDLE;
const options: ReplayWorkerOptions = bundle
  ? { workflowBundle: { codePath: bundle } }
  : { workflowsPath: path.resolve(import.meta.dirname, '../../src/workflows/index.ts') };

describe('recorded workflow histories replay against the current workflow code', () => {
  it('covers every kind of run (npm run record-histories records one of each)', () => {
    assert.deepEqual(files, [...jobKindNames].sort().map((kind) => `replay-${kind}.json`));
  });

  it('replays every one without a nondeterminism error', async () => {
    // Recorded in protobufjs's object form (scripts/record-histories.ts), each file named after its run id.
    const histories = files.map((f) => ({ workflowId: path.basename(f, '.json'), history: protos.temporal.api.history.v1.History.fromObject(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>) }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(options, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    assert.deepEqual(failures, []);
  });
});
