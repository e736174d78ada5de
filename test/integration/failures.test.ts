import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunView } from '../../src/api/runs';
import {
  countUsers,
  getRun,
  openStack,
  ownUsers,
  seedUsers,
  spawnWorker,
  startRun,
  startWorker,
  statusCounts,
  testConfig,
  uniqueId,
  usersCsv,
  waitForRun,
  writeFixture,
  type Stack,
} from '../helpers/stack';

/**
 * How runs end when the database fails them: at once when no retry can help, after a bounded
 * number of attempts otherwise, with the retrying visible in GET /runs/:id meanwhile. The worker
 * here gives up after 3 attempts (BATCHFLOW_MAX_ATTEMPTS) so that the bound is reached quickly,
 * and hands back to the workflow after every batch (a slice of 1 ms), so each batch is a slice.
 */
let stack: Stack;
let worker: Awaited<ReturnType<typeof startWorker>>;
before(async () => {
  stack = await openStack(testConfig({ BATCHFLOW_MAX_ATTEMPTS: '3', BATCHFLOW_SLICE_SECONDS: '0.001' }));
  worker = await startWorker(stack.config);
});
after(async () => {
  await worker.stop();
  await stack.close();
});

/**
 * A trigger on users that fails the statement (with `body`, PL/pgSQL) for the rows `when` picks,
 * counting its calls in a sequence; dropped by the returned function.
 */
async function failingTrigger(p: string, event: 'INSERT' | 'UPDATE', when: string, body: string) {
  const name = `fail_${p.replace(/-/g, '_')}`;
  const pool = stack.pool;
  await pool.query(`CREATE SEQUENCE ${name}_calls`);
  await pool.query(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE calls bigint := nextval('${name}_calls'); BEGIN ${body} RETURN NEW; END $$`);
  await pool.query(`CREATE TRIGGER ${name} BEFORE ${event} ON users FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION ${name}()`);
  return {
    /** How many times the trigger ran: once per attempt at the failing row (sequences ignore rollbacks). */
    calls: async () => (await pool.query<{ n: number }>(`SELECT last_value AS n FROM ${name}_calls`)).rows[0]!.n,
    drop: () => pool.query(`DROP TRIGGER ${name} ON users; DROP FUNCTION ${name}(); DROP SEQUENCE ${name}_calls`),
  };
}

const transient = (message: string) => `RAISE EXCEPTION '${message}' USING ERRCODE = 'serialization_failure';`;

describe('errors no retry can fix', () => {
  it('a missing column (SQLSTATE 42703) fails the run at the first attempt, with the database message', async () => {
    const p = uniqueId('col42');
    const ids = await seedUsers(stack.pool, p, 20, { status: 'active' });
    // A real schema mismatch: the trigger assigns a column the table does not have.
    const trigger = await failingTrigger(p, 'UPDATE', `OLD.id = ${ids[7]!}`, 'NEW.no_such_column := 1;');
    try {
      const runId = await startRun(stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, batchSize: 5 });
      const run = await waitForRun(stack, runId);
      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, 'DATABASE_ERROR');
      assert.match(run.error.message, /record "new" has no field "no_such_column" \(SQLSTATE 42703\)/);
      assert.equal(await trigger.calls(), 1, 'one attempt, no retry');
      assert.equal((await statusCounts(stack.pool, p)).inactive ?? 0, 5, 'the batch before is applied; nothing after');
    } finally {
      await trigger.drop();
    }
  });
});

describe('errors that may pass are retried, visibly and within a bound', () => {
  it('while a batch fails and retries, GET /runs/:id shows the attempt and the last failure; once it passes, every row loads once', async () => {
    const p = uniqueId('heal');
    // The row's insert fails twice, then passes: the third attempt (the last allowed) succeeds.
    const trigger = await failingTrigger(p, 'INSERT', `NEW.email = '${p}.7@example.com'`, `IF calls <= 2 THEN ${transient('not yet')} END IF;`);
    try {
      const runId = await startRun(stack, 'import', { source: await writeFixture('heal.csv', usersCsv(p, 20)), dataset: 'users', batchSize: 5 });
      const retrying = await waitForRun(stack, runId, (r) => r.retrying !== undefined);
      assert.equal(retrying.status, 'running');
      assert.equal(retrying.retrying!.activity, 'importSlice');
      assert.ok(retrying.retrying!.attempt >= 2, JSON.stringify(retrying.retrying));
      assert.match(retrying.retrying!.lastFailure.message, /not yet/);
      const run = await waitForRun(stack, runId);
      assert.equal(run.status, 'success', JSON.stringify(run.error));
      assert.deepEqual([run.result!.counts.succeeded, run.result!.counts.failed], [20, 0]);
      assert.equal(await countUsers(stack.pool, p), 20);
      assert.equal(await trigger.calls(), 3);
    } finally {
      await trigger.drop();
    }
  });

  it('the bound counts failures in a row: two slices that each fail twice still finish', async () => {
    const p = uniqueId('twice');
    // Row 7 (second batch) fails on calls 1-2; row 17 (fourth batch, another slice) on calls 4-5.
    const when = `NEW.email IN ('${p}.7@example.com', '${p}.17@example.com')`;
    const trigger = await failingTrigger(p, 'INSERT', when, `IF calls <= 2 OR calls BETWEEN 4 AND 5 THEN ${transient('busy')} END IF;`);
    try {
      const runId = await startRun(stack, 'import', { source: await writeFixture('twice.csv', usersCsv(p, 20)), dataset: 'users', batchSize: 5 });
      const run = await waitForRun(stack, runId);
      assert.equal(run.status, 'success', JSON.stringify(run.error));
      assert.equal(await trigger.calls(), 6, 'four failed attempts in all, never three in a row');
      assert.equal(await countUsers(stack.pool, p), 20);
    } finally {
      await trigger.drop();
    }
  });

  it('an error that never passes fails the run after BATCHFLOW_MAX_ATTEMPTS attempts, with the last error; the batches before it stay', async () => {
    const p = uniqueId('never');
    const trigger = await failingTrigger(p, 'INSERT', `NEW.email = '${p}.7@example.com'`, transient('still locked'));
    try {
      const runId = await startRun(stack, 'import', { source: await writeFixture('never.csv', usersCsv(p, 20)), dataset: 'users', batchSize: 5 });
      const run = await waitForRun(stack, runId);
      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, 'RETRIES_EXHAUSTED');
      assert.match(run.error.message, /gave up after 3 attempts; the last one failed with: still locked/);
      assert.equal(await trigger.calls(), 3);
      assert.equal(await countUsers(stack.pool, p), 5, 'the batch before the failing one is loaded');
    } finally {
      await trigger.drop();
    }
  });
});

describe('no worker to answer', () => {
  it("GET /runs/:id shows the checkpoint's counts, marked stale, then live progress again once a worker is back", async () => {
    const p = uniqueId('stale');
    // Its own task queue, served only by a worker process the test stops.
    const config = testConfig({ BATCHFLOW_SLICE_SECONDS: '1' });
    const own = await openStack(config);
    try {
      let child = spawnWorker(config);
      const runId = await startRun(own, 'import', { source: await writeFixture('stale.csv', usersCsv(p, 200_000)), dataset: 'users', batchSize: 1000 });
      await waitForRun(own, runId, (r) => (r.progress?.counts.processed ?? 0) >= 5_000);
      child.kill('SIGKILL');
      await child.exited;
      const committed = (await own.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE email LIKE $1', [`${p}.%`])).rows[0]!.n;
      const stale: RunView = await getRun(own, runId);
      assert.equal(stale.status, 'running');
      assert.equal(stale.progress?.stale, true, JSON.stringify(stale.progress));
      assert.equal(stale.progress.counts.succeeded, committed, 'the counts of the last committed batch');
      child = spawnWorker(config);
      try {
        const run = await waitForRun(own, runId, undefined, 240_000);
        assert.equal(run.status, 'success');
        assert.equal(run.progress?.stale, undefined);
        assert.equal(await countUsers(own.pool, p), 200_000);
      } finally {
        child.kill('SIGTERM');
        await child.exited;
      }
    } finally {
      await own.close();
    }
  });
});
