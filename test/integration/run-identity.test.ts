import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { dedupeQueries } from '../../src/db/dedupe';
import { notificationQueries } from '../../src/db/notifications';
import { runState } from '../../src/db/queries';
import { replayQueries } from '../../src/db/replays';
import { rowQueries } from '../../src/db/row-queries';
import { locateObject } from '../../src/storage';
import { openDownload } from '../../src/storage/downloads';
import { countUsers, download, getRun, ownUsers, seedUsers, startRun, uniqueId, useStackWithWorker, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';
import { startWebhookReceiver } from '../helpers/webhooks';

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

/** The bytes at a run output's location, read from the object store (the run's history may be gone). */
async function storedBytes(stack: Stack, location: string): Promise<Buffer> {
  const opened = await openDownload(locateObject(stack.objects, location), { filename: 'file', contentType: 'text/csv', redirect: false });
  assert.ok(opened && 'stream' in opened, `${location} is not there`);
  return Buffer.concat(await opened.stream.toArray());
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
    const firstReport = await download(fixture.stack, runId);
    assert.equal(firstReport.status, 200);
    await expireHistory(fixture.stack, runId);
    await addUsers(['Cy', 'Cy'], 10);
    const second = await dedupe();
    assert.deepEqual([second.status, second.result!.preview!.groups, second.result!.preview!.duplicateRows], ['success', 3, 6], 'the second run grouped the rows again');

    // Each run's report is its own: the second did not overwrite the first, and the API downloads the second's.
    const [before, now] = [first.result!.outputs[0]!, second.result!.outputs[0]!];
    assert.notEqual(now.location, before.location);
    assert.deepEqual(await storedBytes(fixture.stack, before.location), firstReport.body, "the earlier run's report is still there as it was");
    const secondReport = await download(fixture.stack, runId);
    assert.equal(secondReport.status, 200);
    assert.equal(secondReport.body.toString('utf8').trim().split('\n').length, 1 + 6, 'a header and the 6 duplicate rows of the second run');
    assert.equal(secondReport.body.length, now.bytes);
  });

  it("an import under a reused run id shows neither the earlier run's replays nor its notifications; its own are delivered", async () => {
    const { stack } = fixture;
    const p = uniqueId('renotify');
    const runId = uniqueId('reused-notify');
    const hooks = await startWebhookReceiver();
    try {
      const notify = { webhook: hooks.url };
      const notifications = async () => {
        const res = await stack.app.inject({ method: 'GET', url: `/runs/${runId}/notifications` });
        assert.equal(res.statusCode, 200, res.body);
        return res.json<{ counts: Record<string, number>; deliveries: { id: string; event: string; status: string }[] }>();
      };
      // The first run: 2 good rows and a bad one, which a replay fixes.
      const first = await waitForRun(stack, await startRun(stack, 'import', { source: await writeFixture('notify-first.csv', `${usersCsv(p, 2)}bad-email,Bad\n`), dataset: 'users', notify }, runId));
      assert.equal(first.status, 'partial');
      const res = await stack.app.inject({ method: 'POST', url: `/runs/${runId}/replay`, payload: { source: await writeFixture('notify-fixed.csv', `_row,email,name\n3,${p}.3@example.com,Fixed\n`) } });
      assert.equal(res.statusCode, 202, res.body);
      const replayId = res.json<{ runId: string }>().runId;
      assert.equal((await waitForRun(stack, replayId)).status, 'success');
      assert.deepEqual((await getRun(stack, runId)).replays, { rejectedRows: 1, acceptedLater: 1, runs: [replayId] });
      assert.deepEqual((await notifications()).deliveries.map((d) => [d.event, d.status]), [['run.partial', 'delivered']]);
      await expireHistory(stack, runId);

      // The same id, another file: 3 good rows and a bad one.
      const second = await waitForRun(stack, await startRun(stack, 'import', { source: await writeFixture('notify-second.csv', `${usersCsv(p, 3, 10)}also-bad,Bad\n`), dataset: 'users', notify }, runId));
      assert.equal(second.status, 'partial');
      assert.deepEqual(second.replays, { rejectedRows: 1, acceptedLater: 0, runs: [] }, "the earlier run's replay and the row it fixed are not this run's");
      const rejected = await stack.app.inject({ method: 'GET', url: `/runs/${runId}/rejected` });
      assert.equal(rejected.body, '_row,email,name,role,status,signup_date\n4,also-bad,Bad\n', "GET /runs/:id/rejected gives this run's rejected row");
      const log = await notifications();
      assert.deepEqual(log.counts, { pending: 0, delivered: 1, failed: 0 });
      const got = hooks.received.filter((r) => r.body.data.runId === runId);
      assert.deepEqual(got.map((r) => r.type), ['run.partial', 'run.partial'], 'the second run was told about too: its end is not taken for the earlier one');
      assert.notEqual(got[1]!.id, got[0]!.id);
      assert.deepEqual(log.deliveries.map((d) => d.id), [got[1]!.id], "the log shows the second run's delivery only");
      assert.equal((await getRun(stack, replayId)).replays?.replayOf, runId, 'the replay still names the run it fixed');
    } finally {
      await hooks.close();
    }
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

  it('run state untouched for longer than the retention period is purged (replays and notification deliveries too); newer state and referenced id lists stay', async () => {
    const pool = fixture.stack.pool;
    const old = { id: uniqueId('old-run'), execution: uniqueId('old-exec') };
    const recent = { id: uniqueId('recent-run'), execution: uniqueId('recent-exec') };
    const [oldList, usedList] = [uniqueId('list-old'), uniqueId('list-used')];
    // Each run was replayed (its replay as old as it), and recorded a notification.
    const replayOf = new Map([old, recent].map((run) => [run, { id: uniqueId('replay-run'), execution: uniqueId('replay-exec') }]));
    const delivery = { channel: 'webhook' as const, target: 'https://hooks.example.com/x', event: 'run.success', payload: { type: 'run.success', timestamp: new Date().toISOString(), data: {} } };
    for (const run of [old, recent]) {
      const replay = replayOf.get(run)!;
      await runState.register(pool, run);
      await runState.register(pool, replay);
      await runState.writeCheckpoint(pool, run.execution, 1, { seq: 1 });
      await runState.insertErrors(pool, run.execution, [{ row: 1, line: 2, field: null, code: 'VALIDATION_FAILED', message: 'bad', raw: { a: 1 } }]);
      await runState.storePreviewSamples(pool, run.execution, { sample: [{ id: 1 }] });
      await dedupeQueries.insertGroups(pool, run.execution, [{ group: 1, id: 1, keep: true, score: 1, exact: true }]);
      await replayQueries.recordReplay(pool, run, replay);
      await replayQueries.recordAccepted(pool, replay.execution, [1]);
      await notificationQueries.enqueue(pool, run, [{ ...delivery, subject: run.execution }]);
    }
    await rowQueries.storeIdList(pool, oldList, [1, 2]);
    await rowQueries.storeIdList(pool, usedList, [3]);
    await rowQueries.referenceIdList(pool, recent.execution, usedList);
    await pool.query("UPDATE run_executions SET touched_at = now() - interval '31 days' WHERE execution_id = ANY($1)", [[old.execution, replayOf.get(old)!.execution]]);
    await pool.query("UPDATE id_list_heads SET stored_at = now() - interval '31 days' WHERE list_id = ANY($1)", [[oldList, usedList]]);

    assert.ok((await runState.purge(pool, new Date(Date.now() - 30 * 86_400_000))) >= 1);
    const left = async (execution: string) => [
      (await runState.readCheckpoint(pool, execution)) !== undefined,
      await runState.countErrors(pool, execution),
      (await runState.readPreviewSamples(pool, execution)) !== undefined,
      await dedupeQueries.hasGroups(pool, execution),
      await replayQueries.summary(pool, execution),
      (await notificationQueries.counts(pool, execution)).pending,
    ];
    assert.deepEqual(await left(old.execution), [false, 0, false, false, { replays: [], acceptedLater: 0, replayOf: null }, 0]);
    assert.deepEqual(await left(recent.execution), [true, 1, true, true, { replays: [replayOf.get(recent)!.id], acceptedLater: 1, replayOf: null }, 1]);
    const accepted = async (run: typeof old) =>
      (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM replayed_rows WHERE execution_id = $1', [replayOf.get(run)!.execution])).rows[0]!.n;
    assert.deepEqual([await accepted(old), await accepted(recent)], [0, 1], 'the rows an old replay accepted go with it');
    assert.deepEqual([await rowQueries.idListCount(pool, oldList), await rowQueries.idListCount(pool, usedList)], [0, 1], 'an old list no run uses goes; one a kept run uses stays');
  });
});
