import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RunView } from '../../src/api/runs';
import { historyText, ownUsers, startRun, uniqueId, useStackWithWorker, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/**
 * Workflow history holds positions and counts, never rows: a marker planted in the rows a run
 * reads (valid ones, rejected ones, previewed ones) shows in the API (row errors, preview
 * samples, both read from Postgres) and nowhere in the run's history, for every kind of run.
 */
const newMarker = () => `mk${randomUUID().replace(/-/g, '').slice(0, 12)}`;

/** Users with the marker in their email (the key, shown in previews) and name, under `p`. */
async function seedMarked(stack: Stack, p: string, marker: string, count: number, name = (i: number) => `Name ${marker} ${i}`): Promise<void> {
  await stack.pool.query(
    `INSERT INTO users (email, name, status) SELECT $1 || '.' || g || '.' || $2 || '@example.com', n, 'active' FROM unnest($3::text[]) WITH ORDINALITY AS t(n, g)`,
    [p, marker, Array.from({ length: count }, (_, i) => name(i + 1))],
  );
}

async function assertNotInHistory(stack: Stack, marker: string, ...runIds: string[]): Promise<void> {
  for (const runId of runIds) {
    const text = await historyText(stack.client, runId);
    assert.ok(text.length > 1000, `${runId} has a history`);
    assert.equal(text.includes(marker), false, `the marker is in the history of ${runId}`);
  }
}

const errorsText = async (stack: Stack, runId: string) => (await stack.app.inject({ method: 'GET', url: `/runs/${runId}/errors?format=ndjson` })).body;

/** A CSV whose every row carries the marker: good rows, a bad role, a bad email, repeats in the batch and across batches, a short row. */
function markedCsv(p: string, m: string): string {
  return [
    'email,name,role',
    `${p}.1.${m}@example.com,Name ${m},user`,
    `${p}.2.${m}@example.com,Name ${m},superuser ${m}`,
    `bad-email-${m},Name ${m},user`,
    `${p}.3.${m}@example.com,Name ${m},user`,
    `${p}.3.${m}@example.com,Again ${m},user`,
    `${p}.1.${m}@example.com,Later ${m},user`,
    `${p}.4.${m}@example.com,Short ${m}`,
  ].join('\n');
}

describe('no rows in workflow history', () => {
  const fixture = useStackWithWorker();
  const stack = () => fixture.stack;

  it('import (CSV and NDJSON), with rows rejected every way', async () => {
    const p = uniqueId('hist');
    const m = newMarker();
    const csvRun = await waitForRun(stack(), await startRun(stack(), 'import', { source: await writeFixture('marked.csv', markedCsv(p, m)), dataset: 'users', batchSize: 2 }));
    assert.equal(csvRun.status, 'partial', JSON.stringify(csvRun.error));
    assert.equal(csvRun.result!.errorCount, 5);
    const ndjson = [`{"email": "${p}.9.${m}@example.com", "name": "${m}"}`, `{"email": ${m}}`, `{"email": "bad-${m}", "name": "${m}"}`].join('\n');
    const ndjsonRun = await waitForRun(stack(), await startRun(stack(), 'import', { source: await writeFixture('marked.ndjson', ndjson), dataset: 'users' }));
    assert.equal(ndjsonRun.status, 'partial');
    for (const run of [csvRun, ndjsonRun]) assert.ok((await errorsText(stack(), run.runId)).includes(m), 'the row errors keep the rows');
    await assertNotInHistory(stack(), m, csvRun.runId, ndjsonRun.runId);
  });

  it('bulk update that waits for approval: the preview samples are shown, not kept in history', async () => {
    const p = uniqueId('histupd');
    const m = newMarker();
    await seedMarked(stack(), p, m, 5);
    const runId = await startRun(stack(), 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, requiresConfirmation: true, batchSize: 2 });
    const waiting = await waitForRun(stack(), runId, (r) => r.progress?.step === 'awaiting_approval');
    assert.ok(JSON.stringify(waiting.progress!.preview!.sample).includes(m), 'the preview shows the sample rows');
    assert.equal((await stack().app.inject({ method: 'POST', url: `/runs/${runId}/approve` })).statusCode, 202);
    const run = await waitForRun(stack(), runId);
    assert.deepEqual([run.status, run.result!.counts.succeeded], ['success', 5]);
    assert.ok(JSON.stringify(run.result!.preview!.sample).includes(m), "the result's preview shows them too");
    await assertNotInHistory(stack(), m, runId);
  });

  it('cleanup, its preview per rule included', async () => {
    const p = uniqueId('histcln');
    const m = newMarker();
    await seedMarked(stack(), p, m, 4);
    const rule = { name: 'marked_users', dataset: 'users', where: ownUsers(p), batchSize: 2 };
    const run = await waitForRun(stack(), await startRun(stack(), 'cleanup', { rules: [rule] }));
    assert.deepEqual([run.status, run.result!.counts.succeeded], ['success', 4]);
    assert.ok(JSON.stringify(run.result!.preview!.steps!.marked_users!.sample).includes(m));
    await assertNotInHistory(stack(), m, run.runId);
  });

  it('custom validate_data, whose row errors carry the invalid rows', async () => {
    const p = uniqueId('histval');
    const m = newMarker();
    // Names longer than the declared 200 characters: invalid rows, reported with their values.
    await seedMarked(stack(), p, m, 3, (i) => `${m} ${'x'.repeat(200)} ${i}`);
    const run = await waitForRun(stack(), await startRun(stack(), 'custom', { step: 'validate_data', dataset: 'users', where: ownUsers(p) }));
    assert.deepEqual([run.status, run.result!.errorCount], ['partial', 3]);
    assert.ok((await errorsText(stack(), run.runId)).includes(m));
    await assertNotInHistory(stack(), m, run.runId);
  });

  it('pipeline: neither the pipeline nor its steps', async () => {
    const p = uniqueId('histpipe');
    const m = newMarker();
    const source = await writeFixture('pipe.csv', markedCsv(p, m));
    const run: RunView = await waitForRun(
      stack(),
      await startRun(stack(), 'pipeline', {
        steps: [
          { name: 'load', kind: 'import', params: { source, dataset: 'users', batchSize: 2 } },
          { name: 'update', kind: 'bulk-update', params: { dataset: 'users', where: ownUsers(p), set: { status: 'pending' } }, dependsOn: ['load'] },
        ],
      }),
    );
    assert.equal(run.status, 'partial', JSON.stringify(run.result?.steps));
    const steps = run.result!.steps!;
    assert.deepEqual([steps.load!.status, steps.update!.status], ['partial', 'success']);
    assert.ok((await errorsText(stack(), steps.load!.runId!)).includes(m));
    await assertNotInHistory(stack(), m, run.runId, steps.load!.runId!, steps.update!.runId!);
  });

  it('dedupe with a merge that waits for approval: its groups are shown by id, its rows nowhere in history', async () => {
    const p = uniqueId('histdup');
    const m = newMarker();
    // Every name twice: four groups of exact duplicates, each row carrying the marker.
    await seedMarked(stack(), p, m, 8, (i) => `Name ${m} ${(i % 4) + 1}`);
    const runId = await startRun(stack(), 'dedupe', { dataset: 'users', where: ownUsers(p), exact: ['name'], merge: { keep: { by: 'id' } }, requiresConfirmation: true, batchSize: 3 });
    const waiting = await waitForRun(stack(), runId, (r) => r.progress?.step === 'awaiting_approval');
    assert.equal(waiting.progress!.preview!.sample!.length, 4, 'the preview shows the groups, read from Postgres');
    assert.equal((await stack().app.inject({ method: 'POST', url: `/runs/${runId}/approve` })).statusCode, 202);
    const run = await waitForRun(stack(), runId);
    assert.deepEqual([run.status, run.result!.counts.succeeded], ['success', 4]);
    assert.equal(run.result!.preview!.sample!.length, 4);
    await assertNotInHistory(stack(), m, runId);
  });

  it('params over 1 MiB are a 400 before the run starts; long id lists are stored apart and do not count', async () => {
    const big = Array.from({ length: 8_000 }, (_, i) => `${i}-${'n'.repeat(150)}`);
    const refused = await stack().app.inject({ method: 'POST', url: '/runs', payload: { kind: 'bulk-update', params: { dataset: 'users', where: { field: 'name', op: 'in', value: big }, set: { status: 'inactive' }, dryRun: true } } });
    assert.equal(refused.statusCode, 400, refused.body);
    assert.equal(refused.json<{ error: string }>().error, 'PARAMS_TOO_LARGE');
    assert.match(refused.json<{ message: string }>().message, /^params are \d+ bytes as JSON, more than 1048576 \(1 MiB\)/);

    const ids = Array.from({ length: 200_000 }, (_, i) => 1_000_000_000 + i);
    assert.ok(JSON.stringify(ids).length > 1024 * 1024);
    const stored = await stack().app.inject({ method: 'POST', url: '/runs', payload: { kind: 'bulk-update', params: { dataset: 'users', ids, set: { status: 'inactive' }, dryRun: true } } });
    assert.equal(stored.statusCode, 202, stored.body);
    const run = await waitForRun(stack(), stored.json<{ runId: string }>().runId);
    assert.deepEqual([run.status, run.result!.preview!.notFound], ['success', 200_000]);
  });
});
