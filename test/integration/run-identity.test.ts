import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { dedupeQueries } from '../../src/db/dedupe';
import { runState } from '../../src/db/queries';
import { rowQueries } from '../../src/db/row-queries';
import { countUsers, ownUsers, seedUsers, startRun, uniqueId, useStackWithWorker, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/** Removes a finished run from Temporal, as the namespace's retention does once its history expires. */
async function expireHistory(stack: Stack, runId: string): Promise<void> {
  const { client } = stack;
  await client.workflowService.deleteWorkflowExecution({ namespace: stack.config.temporal.namespace, workflowExecution: { workflowId: runId } });
  // Deletion runs in the background on the server: wait for it (a loaded machine takes a while).
  for (const deadline = Date.now() + 120_000; ; ) {
    const gone = await client.workflow
      .getHandle(runId)
      .describe()
      .then(
        () => false,
        (err: unknown) => err instanceof WorkflowNotFoundError,
      );
    if (gone) return;
    assert.ok(Date.now() < deadline, `${runId} was not deleted`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const errorRows = async (stack: Stack, runId: string) =>
  (await stack.app.inject({ method: 'GET', url: `/runs/${runId}/errors` })).json<{ errors: { row: number }[] }>().errors.map((e) => e.row);

describe('run identity', () => {
  const fixture = useStackWithWorker();

  it("a run id used again once the earlier run's history expired starts afresh: neither its checkpoint nor its errors are the old run's", async () => {
    const p = uniqueId('reuse');
    const runId = uniqueId('reused-run');
    // The first run: 3 good rows, 1 bad one, done.
    const first = await waitForRun(fixture.stack, await startRun(fixture.stack, 'import', { source: await writeFixture('first.csv', `${usersCsv(p, 3)}bad-email,Bad\n`), dataset: 'users' }, runId));
    assert.deepEqual([first.status, first.result!.counts.succeeded, first.result!.errorCount], ['partial', 3, 1]);
    await expireHistory(fixture.stack, runId);

    // The same id, another file: 5 good rows (from 11 on) and a bad one on row 2.
    const csv = ['email,name', `${p}.11@example.com,A`, 'also-bad,B', ...[12, 13, 14, 15].map((i) => `${p}.${i}@example.com,C`)].join('\n');
    const second = await waitForRun(fixture.stack, await startRun(fixture.stack, 'import', { source: await writeFixture('second.csv', csv), dataset: 'users' }, runId));
    assert.equal(second.status, 'partial');
    assert.deepEqual([second.result!.counts.processed, second.result!.counts.succeeded, second.result!.errorCount], [6, 5, 1], 'the second file read from its start');
    assert.equal(await countUsers(fixture.stack.pool, p), 8);
    assert.deepEqual(await errorRows(fixture.stack, runId), [2], "GET /runs/:id/errors shows the new run's errors only");
  });

  it("a dedupe under a reused run id finds its own duplicates, not the groups the earlier run stored", async () => {
    const p = uniqueId('redup');
    const runId = uniqueId('reused-dedupe');
    const addUsers = (names: string[], from: number) =>
      fixture.stack.pool.query(`INSERT INTO users (email, name, status) SELECT $1 || '.' || (g + $3) || '@example.com', n, 'active' FROM unnest($2::text[]) WITH ORDINALITY AS t(n, g)`, [p, names, from]);
    const dedupe = async () => waitForRun(fixture.stack, await startRun(fixture.stack, 'dedupe', { dataset: 'users', where: ownUsers(p), exact: ['name'] }, runId));
    // Two pairs of equal names, then one more pair.
    await addUsers(['Ann', 'Ann', 'Bob', 'Bob'], 0);
    const first = await dedupe();
    assert.deepEqual([first.status, first.result!.preview!.groups], ['success', 2]);
    await expireHistory(fixture.stack, runId);
    await addUsers(['Cy', 'Cy'], 10);
    const second = await dedupe();
    assert.deepEqual([second.status, second.result!.preview!.groups, second.result!.preview!.duplicateRows], ['success', 3, 6], 'the second run grouped the rows again');
  });

  it("a pipeline step whose child run id was used before by another run starts afresh", async () => {
    const p = uniqueId('child');
    const pipelineId = uniqueId('pipe');
    await seedUsers(fixture.stack.pool, p, 12, { status: 'active' });
    // Someone ran a validation under the id the pipeline will give its step.
    const earlier = await waitForRun(
      fixture.stack,
      await startRun(fixture.stack, 'custom', { step: 'validate_data', dataset: 'users', where: { and: [ownUsers(p), { field: 'status', op: 'eq', value: 'pending' }] } }, `${pipelineId}.check`),
    );
    assert.deepEqual([earlier.status, earlier.result!.counts.processed], ['success', 0]);

    const run = await waitForRun(
      fixture.stack,
      await startRun(fixture.stack, 'pipeline', { steps: [{ name: 'check', kind: 'custom', params: { step: 'validate_data', dataset: 'users', where: ownUsers(p) } }] }, pipelineId),
    );
    assert.equal(run.status, 'success', JSON.stringify(run.result?.steps));
    assert.equal(run.result!.steps!.check!.counts?.processed, 12, "the step checked the rows instead of resuming the earlier run's finished checkpoint");
  });

  it('run state untouched for longer than the retention period is purged; newer state and referenced id lists stay', async () => {
    const pool = fixture.stack.pool;
    const old = { id: uniqueId('old-run'), execution: uniqueId('old-exec') };
    const recent = { id: uniqueId('recent-run'), execution: uniqueId('recent-exec') };
    const [oldList, usedList] = [uniqueId('list-old'), uniqueId('list-used')];
    for (const run of [old, recent]) {
      await runState.register(pool, run);
      await runState.writeCheckpoint(pool, run.execution, 1, { seq: 1 });
      await runState.insertErrors(pool, run.execution, [{ row: 1, line: 2, field: null, code: 'VALIDATION_FAILED', message: 'bad', raw: { a: 1 } }]);
      await runState.storePreviewSamples(pool, run.execution, { sample: [{ id: 1 }] });
      await dedupeQueries.insertGroups(pool, run.execution, [{ group: 1, id: 1, keep: true, score: 1, exact: true }]);
    }
    await rowQueries.storeIdList(pool, oldList, [1, 2]);
    await rowQueries.storeIdList(pool, usedList, [3]);
    await rowQueries.referenceIdList(pool, recent.execution, usedList);
    await pool.query("UPDATE run_executions SET touched_at = now() - interval '31 days' WHERE execution_id = $1", [old.execution]);
    await pool.query("UPDATE id_list_heads SET stored_at = now() - interval '31 days' WHERE list_id = ANY($1)", [[oldList, usedList]]);

    assert.ok((await runState.purge(pool, new Date(Date.now() - 30 * 86_400_000))) >= 1);
    const left = async (execution: string) => [
      (await runState.readCheckpoint(pool, execution)) !== undefined,
      await runState.countErrors(pool, execution),
      (await runState.readPreviewSamples(pool, execution)) !== undefined,
      await dedupeQueries.hasGroups(pool, execution),
    ];
    assert.deepEqual(await left(old.execution), [false, 0, false, false]);
    assert.deepEqual(await left(recent.execution), [true, 1, true, true]);
    assert.deepEqual([await rowQueries.idListCount(pool, oldList), await rowQueries.idListCount(pool, usedList)], [0, 1], 'an old list no run uses goes; one a kept run uses stays');
  });
});
