import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { shippedSchedulesFile } from '../../src/config';
import { loadSchedules } from '../../src/schedules/declarations';
import { freePort } from '../../src/stack/ports';
import { shipped as shippedDatasets } from '../helpers/datasets';
import { repoRoot, uniqueId, writeFixture } from '../helpers/stack';

const exec = promisify(execFile);

/**
 * `npm start` (batchflow start) against the test stack's Temporal and Postgres (given by the
 * environment, so it starts no services of its own): its worker, API, admin key and sample run.
 */
describe('npm start', () => {
  it('needs no set-up: the first start creates an admin key (0600) that the CLI finds, and shows the synced schedules; the next start reuses the key', async () => {
    const dataDir = path.join(path.dirname(await writeFixture('marker', '')), uniqueId('start-data'));
    const port = await freePort();
    // The shipped schedules, as a user's npm start syncs them (on this test's own task queue).
    const env: Record<string, string | undefined> = { ...process.env, BATCHFLOW_DATA_DIR: dataDir, PORT: String(port), TASK_QUEUE: uniqueId('tq-start'), BATCHFLOW_SCHEDULES: shippedSchedulesFile };
    delete env.BATCHFLOW_API_KEY;

    /** Starts the stack, waits until it says it is running, and returns its output and a stop(). */
    async function start(): Promise<{ output: () => string; stop: () => Promise<void> }> {
      const child = spawn(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), 'start'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        const onData = (d: Buffer) => {
          output += d.toString();
          if (output.includes('running; Ctrl-C stops everything')) resolve();
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        void exited.then((code) => reject(new Error(`batchflow start exited ${code}:\n${output}`)));
      });
      return {
        output: () => output,
        async stop() {
          child.kill('SIGINT');
          assert.equal(await exited, 0, output);
        },
      };
    }

    const first = await start();
    const keyFile = path.join(dataDir, 'admin-api-key');
    try {
      assert.match(first.output(), new RegExp(`API key: +${keyFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(admin, created now;`));
      assert.match(first.output(), /run sample-users-import: success/);
      // The banner: a line per shipped schedule, with its kind, spec and next run (or paused).
      for (const { id, kind } of loadSchedules(shippedSchedulesFile, shippedDatasets)) {
        assert.ok(first.output().includes(` ${id} (${kind}, `), `the banner shows ${id}:\n${first.output()}`);
      }
      assert.equal((await fs.stat(keyFile)).mode & 0o777, 0o600);
      const cli = await exec(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), 'status', 'sample-users-import'], {
        cwd: repoRoot,
        env: { ...env, BATCHFLOW_API_URL: `http://localhost:${port}` },
      });
      assert.equal((JSON.parse(cli.stdout) as { startedBy: string }).startedBy, 'local-admin');
    } finally {
      await first.stop();
    }
    const key = await fs.readFile(keyFile, 'utf8');

    const second = await start();
    try {
      assert.match(second.output(), /API key: +.* \(admin; the CLI here uses it/, 'reused, not created');
      assert.match(second.output(), /sample import sample-users-import \(already run: reusing it\)/);
      assert.equal(await fs.readFile(keyFile, 'utf8'), key);
    } finally {
      await second.stop();
      // The schedules go with the test: a sync of a file that declares none deletes Batchflow's own.
      const none = await writeFixture(`${uniqueId('no-schedules')}.yaml`, 'schedules: {}\n');
      await exec(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), 'schedules', 'sync', '--file', none], { cwd: repoRoot, env });
    }
  });
});
