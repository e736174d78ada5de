import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { openStack, ownUsers, seedUsers, startRun, startWorker, statusCounts, testConfig, uniqueId, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/** BATCHFLOW_PARALLEL_BATCHES above 2: three batches load at once, and stay correct. */
let stack: Stack;
let worker: Awaited<ReturnType<typeof startWorker>>;
before(async () => {
  const config = testConfig({ BATCHFLOW_PARALLEL_BATCHES: '3' });
  assert.equal(config.parallelBatches, 3);
  stack = await openStack(config);
  worker = await startWorker(config);
});
after(async () => {
  await worker.stop();
  await stack.close();
});

it('import, three batches at once: a key repeated two batches back waits for that batch, and its first row is kept, in every mode', async () => {
  for (const mode of ['upsert', 'insert', 'skip-existing'] as const) {
    const p = uniqueId(`par3-${mode}`);
    // Batches of two: rows 3-4 repeat "a" of the batch before; rows 5-6 repeat "b" and rows 7-8
    // repeat "c" of two batches before, which may still be loading beside them.
    const keys = ['a', 'b', 'a', 'c', 'd', 'b', 'c', 'e'];
    const csv = ['email,name', ...keys.map((k, i) => `${p}.${k}@example.com,${k} on row ${i + 1}`)].join('\n');
    // The first batch's load is slow, so the third one would be loading beside it if it did not wait.
    const fn = `slow_${p.replace(/-/g, '_')}`;
    await stack.pool.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$`);
    await stack.pool.query(`CREATE TRIGGER ${fn} BEFORE INSERT ON users FOR EACH ROW WHEN (NEW.email = '${p}.a@example.com') EXECUTE FUNCTION ${fn}()`);
    try {
      const run = await waitForRun(stack, await startRun(stack, 'import', { source: await writeFixture('par3.csv', csv), dataset: 'users', mode, batchSize: 2 }));
      assert.deepEqual([run.status, run.result!.counts.inserted, run.result!.counts.failed], ['partial', 5, 3], mode);
      const errors = (await stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/errors` })).json<{ errors: { row: number; code: string }[] }>().errors;
      assert.deepEqual(errors.map((e) => [e.row, e.code]), [[3, 'DUPLICATE_KEY'], [6, 'DUPLICATE_KEY'], [7, 'DUPLICATE_KEY']], mode);
      const { rows } = await stack.pool.query<{ name: string }>('SELECT name FROM users WHERE email LIKE $1 ORDER BY email', [`${p}.%`]);
      assert.deepEqual(rows.map((r) => r.name), ['a on row 1', 'b on row 2', 'c on row 4', 'd on row 5', 'e on row 8'], mode);
    } finally {
      await stack.pool.query(`DROP TRIGGER ${fn} ON users; DROP FUNCTION ${fn}()`);
    }
  }
});

it('bulk update, three batches at once: each row updated exactly once', async () => {
  const p = uniqueId('par3upd');
  await seedUsers(stack.pool, p, 5_000, { status: 'active' });
  const run = await waitForRun(stack, await startRun(stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, batchSize: 250 }));
  assert.deepEqual([run.status, run.result!.counts.succeeded, run.result!.counts.failed], ['success', 5_000, 0]);
  assert.deepEqual(await statusCounts(stack.pool, p), { inactive: 5_000 });
});
