import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { countUsers, openStack, startRun, startWorker, testConfig, uniqueId, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/**
 * A batch waits for a row lock at most BATCHFLOW_LOCK_TIMEOUT (1 s here, 30 s by default), then
 * fails and its slice is retried: no wait on another transaction lasts forever.
 */
let stack: Stack;
let worker: Awaited<ReturnType<typeof startWorker>>;
before(async () => {
  const config = testConfig({ BATCHFLOW_LOCK_TIMEOUT: '1s' });
  stack = await openStack(config);
  worker = await startWorker(config);
});
after(async () => {
  await worker.stop();
  await stack.close();
});

/** Runs `fn` with a trigger that sleeps `seconds` before inserting the users `when` picks. */
async function withSlowInsert(p: string, when: string, seconds: number, fn: () => Promise<void>): Promise<void> {
  const name = `slow_${p.replace(/-/g, '_')}`;
  await stack.pool.query(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${seconds}); RETURN NEW; END $$`);
  await stack.pool.query(`CREATE TRIGGER ${name} BEFORE INSERT ON users FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION ${name}()`);
  try {
    await fn();
  } finally {
    await stack.pool.query(`DROP TRIGGER ${name} ON users; DROP FUNCTION ${name}()`);
  }
}

it('two runs importing the same keys at once never wait on each other for good', async () => {
  const p = uniqueId('cross');
  const [k1, k2] = [`${p}.1@example.com`, `${p}.2@example.com`];
  // Run B loads k1 and k2 in two batches side by side; its first batch is slow to insert k1.
  const b = await writeFixture('b.csv', `email,name\n${k1},B\n${k2},B\n`);
  // Run A loads both keys in one batch.
  const a = await writeFixture('a.csv', `email,name\n${k1},A\n${k2},A\n`);
  await withSlowInsert(p, `NEW.email = '${k1}' AND NEW.name = 'B'`, 4, async () => {
    const runB = await startRun(stack, 'import', { source: b, dataset: 'users', batchSize: 1 });
    // Once B's first batch sleeps, its second holds k2 (uncommitted) and waits for the first to commit.
    for (let tries = 0; ; tries++) {
      const { rows } = await stack.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'WITH batch AS%' AND wait_event = 'PgSleep'");
      if (rows[0]!.n > 0) break;
      assert.ok(tries < 300, "B's first batch never started sleeping");
      await new Promise((r) => setTimeout(r, 100));
    }
    // A now takes k1 and waits for B's k2; when B's first batch wakes, it waits for A's k1: without
    // a lock timeout, A and B wait for each other, B's second batch in the runner, unseen by Postgres.
    const runA = await startRun(stack, 'import', { source: a, dataset: 'users' });
    const [doneA, doneB] = await Promise.all([waitForRun(stack, runA, undefined, 120_000), waitForRun(stack, runB, undefined, 120_000)]);
    assert.deepEqual([doneA.status, doneB.status], ['success', 'success'], JSON.stringify([doneA.error, doneB.error]));
  });
  assert.equal(await countUsers(stack.pool, p), 2);
});

it('a row another transaction keeps locked: the batch gives up after the lock timeout and retries, visibly, until the lock goes', async () => {
  const p = uniqueId('locked');
  await stack.pool.query("INSERT INTO users (email, name) VALUES ($1, 'Before')", [`${p}.1@example.com`]);
  const holder = await stack.pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query("UPDATE users SET name = 'Held' WHERE email = $1", [`${p}.1@example.com`]);
    const runId = await startRun(stack, 'import', { source: await writeFixture('locked.csv', `email,name\n${p}.1@example.com,After\n${p}.2@example.com,New\n`), dataset: 'users' });
    const retrying = await waitForRun(stack, runId, (r) => r.retrying !== undefined);
    assert.match(retrying.retrying!.lastFailure.message, /canceling statement due to lock timeout/);
    await holder.query('COMMIT');
    const run = await waitForRun(stack, runId);
    assert.deepEqual([run.status, run.result!.counts.updated, run.result!.counts.inserted], ['success', 1, 1]);
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    holder.release();
  }
});
