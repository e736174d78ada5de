import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { ScheduleNotFoundError } from '@temporalio/client';
import { shippedSchedulesFile } from '../../src/config';
import { scheduleDigestAttribute } from '../../src/jobs';
import { previousDay } from '../../src/jobs/dates';
import { previousMonth } from '../../src/jobs/invoicing';
import { loadSchedules } from '../../src/schedules/declarations';
import { createWorker } from '../../src/worker';
import { shipped as shippedDatasets } from '../helpers/datasets';
import { invoicesOf, seedCustomers, seedUsage } from '../helpers/invoicing';
import { mailTo } from '../helpers/mailpit';
import { declare, describeSchedule, eventually, getSchedule, scheduledRuns, sync, waitListed } from '../helpers/schedules';
import { repoRoot, testConfig, uniqueId, useStackWithWorker, waitForRun, writeFixture } from '../helpers/stack';

describe('schedules', () => {
  // Declared before the stack's own hooks, so that it runs while the stack is still open: every
  // schedule this file's task queue owns goes at the end.
  after(() => sync(stack(), []));
  const fixture = useStackWithWorker();
  const stack = () => fixture.stack;
  const post = (url: string, payload?: object) => stack().app.inject({ method: 'POST', url, ...(payload && { payload }) });
  const exists = (id: string) =>
    describeSchedule(stack().client, id).then(
      () => true,
      (err: unknown) => (err instanceof ScheduleNotFoundError ? false : Promise.reject(err as Error)),
    );

  /** A schedule file with one aggregate schedule `<p>-a` (cron given) and one report schedule `<p>-b`. */
  const twoSchedules = (p: string, cron = '0 2 * * *') =>
    declare(`schedules:
  ${p}-a:
    cron: "${cron}"
    kind: aggregate
  ${p}-b:
    calendar: {dayOfWeek: SUNDAY, hour: 3}
    kind: report
`);

  it('a sync creates what is missing; a second changes nothing; a changed spec updates the schedule', async () => {
    const p = uniqueId('sync');
    assert.deepEqual(await sync(stack(), twoSchedules(p)), { created: [`${p}-a`, `${p}-b`], updated: [], unchanged: [], deleted: [], conflicts: [], paused: [] });
    assert.deepEqual(await sync(stack(), twoSchedules(p)), { created: [], updated: [], unchanged: [`${p}-a`, `${p}-b`], deleted: [], conflicts: [], paused: [] });

    const changed = await sync(stack(), twoSchedules(p, '30 4 * * *'));
    assert.deepEqual([changed.updated, changed.unchanged], [[`${p}-a`], [`${p}-b`]]);
    const view = await getSchedule(stack(), `${p}-a`);
    assert.equal(view.spec.declared, '30 4 * * *');
    assert.equal(view.kind, 'aggregate');
    assert.equal(view.nextRunTimes.length, 5);
    assert.ok(view.nextRunTimes.every((t) => t.endsWith('T04:30:00.000Z')), view.nextRunTimes.join(', '));
    assert.deepEqual((await sync(stack(), twoSchedules(p, '30 4 * * *'))).unchanged, [`${p}-a`, `${p}-b`], 'and the update is stable');
    await waitListed(stack().client, [`${p}-a`, `${p}-b`]);
    const listed = (await stack().app.inject({ method: 'GET', url: '/schedules' })).json<{ schedules: { id: string }[] }>().schedules.map((s) => s.id);
    assert.ok(listed.includes(`${p}-a`) && listed.includes(`${p}-b`), listed.join(', '));
  });

  it("an operator's pause survives a sync that changes the schedule; unpause lifts it", async () => {
    const p = uniqueId('pause');
    await sync(stack(), twoSchedules(p));
    const paused = await post(`/schedules/${p}-a/pause`, { note: 'incident 42' });
    assert.equal(paused.statusCode, 200, paused.body);
    assert.deepEqual([paused.json<{ paused: boolean }>().paused, paused.json<{ note: string }>().note], [true, 'incident 42']);

    const outcome = await sync(stack(), twoSchedules(p, '0 5 * * *'));
    assert.deepEqual(outcome.updated, [`${p}-a`]);
    assert.deepEqual(outcome.paused, [{ id: `${p}-a`, note: 'incident 42' }]);
    const live = await describeSchedule(stack().client, `${p}-a`);
    assert.deepEqual([live.state.paused, live.state.note], [true, 'incident 42']);
    assert.equal(live.spec.calendars?.[0]?.comment, '0 5 * * *', 'the new spec is in');

    const unpaused = await post(`/schedules/${p}-a/unpause`, { note: 'resolved' });
    assert.deepEqual([unpaused.json<{ paused: boolean }>().paused, unpaused.json<{ note: string }>().note], [false, 'resolved']);
  });

  it("a removed declaration deletes only Batchflow's own schedule of this task queue", async () => {
    const p = uniqueId('remove');
    const otherQueue = uniqueId('tq-other');
    // Someone else's schedule, and Batchflow's schedule for another deployment (task queue).
    await stack().client.schedule.create({
      scheduleId: `${p}-foreign`,
      spec: { cronExpressions: ['0 1 * * *'] },
      action: { type: 'startWorkflow', workflowType: 'somethingElse', taskQueue: 'elsewhere', args: [] },
      state: { paused: true },
    });
    await sync(stack(), declare(`schedules:\n  ${p}-other:\n    cron: "0 2 * * *"\n    kind: aggregate\n`), otherQueue);
    await sync(stack(), twoSchedules(p));
    await waitListed(stack().client, [`${p}-a`, `${p}-b`, `${p}-foreign`, `${p}-other`]);

    const outcome = await sync(stack(), twoSchedules(p).slice(0, 1));
    assert.deepEqual(outcome.deleted, [`${p}-b`]);
    assert.deepEqual(
      await Promise.all([`${p}-a`, `${p}-b`, `${p}-foreign`, `${p}-other`].map(exists)),
      [true, false, true, true],
    );

    // A declaration whose id is taken by a schedule Batchflow did not create leaves that schedule alone.
    const clash = await sync(stack(), declare(`schedules:\n  ${p}-a:\n    cron: "0 2 * * *"\n    kind: aggregate\n  ${p}-foreign:\n    cron: "0 9 * * *"\n    kind: report\n`));
    assert.deepEqual(clash.conflicts, [`${p}-foreign`]);
    const foreign = await describeSchedule(stack().client, `${p}-foreign`);
    assert.deepEqual([foreign.action.workflowType, foreign.spec.calendars?.[0]?.hour], ['somethingElse', [{ start: 1, end: 1, step: 1 }]]);
    assert.equal((await stack().app.inject({ method: 'GET', url: `/schedules/${p}-foreign` })).statusCode, 404, 'nor does the API show it');

    await stack().client.schedule.getHandle(`${p}-foreign`).delete();
    await sync(stack(), [], otherQueue);
    assert.equal(await exists(`${p}-other`), false);
  });

  it('two workers syncing at once end in the same state', async () => {
    const p = uniqueId('race');
    const first = await Promise.all([sync(stack(), twoSchedules(p)), sync(stack(), twoSchedules(p))]);
    assert.deepEqual(first.flatMap((o) => [...o.created, ...o.unchanged]).sort(), [`${p}-a`, `${p}-a`, `${p}-b`, `${p}-b`]);
    const changed = twoSchedules(p, '15 6 * * *');
    await Promise.all([sync(stack(), changed), sync(stack(), changed)]);
    const live = await describeSchedule(stack().client, `${p}-a`);
    assert.equal(live.spec.calendars?.[0]?.comment, '15 6 * * *');
    assert.deepEqual((await sync(stack(), changed)).unchanged, [`${p}-a`, `${p}-b`], 'both left it exactly as declared');
    assert.ok(live.typedSearchAttributes.get(scheduleDigestAttribute));
  });

  it('a bad schedules file stops the worker, naming the schedule and the field', async () => {
    const file = await writeFixture('schedules.yaml', 'schedules:\n  nightly:\n    cron: "0 2 * * *"\n    kind: aggregate\n    params: {date: yesterday}\n');
    await assert.rejects(createWorker(testConfig({ BATCHFLOW_SCHEDULES: file })), /schedule "nightly": params\.date: must be a date as YYYY-MM-DD/);
    // Params are held against the worker's declared datasets too.
    const undeclared = await writeFixture('undeclared.yaml', 'schedules:\n  nightly-export:\n    cron: "0 2 * * *"\n    kind: export\n    params: {dataset: nope}\n');
    await assert.rejects(createWorker(testConfig({ BATCHFLOW_SCHEDULES: undeclared })), /schedule "nightly-export": params\.dataset: "nope" is not a declared dataset/);
  });

  it('trigger starts a run now, listed in GET /runs with its schedule id; the day it computes is the day before it was due', async () => {
    const p = uniqueId('trigger');
    await sync(stack(), declare(`schedules:\n  ${p}:\n    cron: "0 2 * * *"\n    kind: aggregate\n`));
    const res = await post(`/schedules/${p}/trigger`);
    assert.equal(res.statusCode, 202, res.body);
    const { runId } = res.json<{ runId: string }>();
    assert.ok(runId.startsWith(`${p}-`), runId);

    const run = await waitForRun(stack(), runId);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    assert.equal(run.scheduleId, p);
    const listed = await eventually('the run in GET /runs', async () => (await scheduledRuns(stack(), p)).find((r) => r.runId === runId));
    assert.equal(listed.scheduleId, p);
    const { rows } = await stack().pool.query<{ date: string }>('SELECT date::text FROM daily_stats WHERE run_id = $1', [runId]);
    assert.deepEqual(rows, [{ date: previousDay(new Date(listed.scheduledAt!), 'UTC') }]);
    const view = await getSchedule(stack(), p);
    assert.deepEqual(view.recentRuns.map((r) => [r.runId, r.status]), [[runId, 'success']]);
  });

  it('overlap skip holds while a run is still going, and a paused schedule starts nothing', async () => {
    const p = uniqueId('overlap');
    // Every 2 seconds, a cleanup that waits for approval: the first run is still going at every later time.
    const waiting = `
    cron: "*/2 * * * * * *"
    kind: cleanup
    overlap: skip
    params:
      requiresConfirmation: true
      rules: [{name: nothing, dataset: posts, where: {field: slug, op: eq, value: "${p}"}}]`;
    await sync(stack(), declare(`schedules:\n  ${p}-live:${waiting}\n  ${p}-paused:${waiting}\n    paused: true\n    note: paused in the file\n`));

    const live = await eventually('two skipped overlaps', async () => {
      const d = await describeSchedule(stack().client, `${p}-live`);
      return d.info.numActionsSkippedOverlap >= 2 ? d : undefined;
    });
    assert.equal(live.info.numActionsTaken, 1);
    const runs = await eventually('the one run listed', async () => {
      const listed = await scheduledRuns(stack(), `${p}-live`);
      return listed.length > 0 ? listed : undefined;
    });
    assert.equal(runs.length, 1);
    await waitForRun(stack(), runs[0]!.runId, (r) => r.progress?.step === 'awaiting_approval');

    // In the time the live schedule came due three times, the paused one started nothing.
    const paused = await describeSchedule(stack().client, `${p}-paused`);
    assert.deepEqual([paused.state.paused, paused.state.note, paused.info.numActionsTaken], [true, 'paused in the file', 0]);
    assert.deepEqual(await scheduledRuns(stack(), `${p}-paused`), []);
    const view = await getSchedule(stack(), `${p}-live`);
    assert.ok(view.skippedOverlap >= 2);

    // A trigger still starts a run of a paused schedule: an operator asked for it.
    const triggered = await post(`/schedules/${p}-paused/trigger`);
    assert.equal(triggered.statusCode, 202, triggered.body);
    const triggeredRun = triggered.json<{ runId: string }>().runId;
    await waitForRun(stack(), triggeredRun, (r) => r.progress?.step === 'awaiting_approval');

    await post(`/schedules/${p}-live/pause`, { note: 'test over' });
    for (const runId of [runs[0]!.runId, triggeredRun]) await post(`/runs/${runId}/reject`, { reason: 'test over' });
    await sync(stack(), []);
  });

  it('the API refuses bad requests and unknown schedules', async () => {
    const p = uniqueId('api');
    await sync(stack(), declare(`schedules:\n  ${p}:\n    cron: "0 2 * * *"\n    kind: aggregate\n`));
    const cases: [string, string, object | undefined, number, string?][] = [
      ['POST', `/schedules/${p}/backfill`, { from: '2026-03-10', to: '2026-03-01' }, 400, 'to'],
      ['POST', `/schedules/${p}/backfill`, { from: '2026-03-01' }, 400, 'to'],
      ['POST', `/schedules/${p}/backfill`, { from: '2020-01-01', to: '2026-01-01' }, 400, 'to'],
      ['POST', `/schedules/${p}/pause`, { reason: 'x' }, 400, 'reason'],
      ['GET', '/schedules/no-such-schedule', undefined, 404],
      ['POST', '/schedules/no-such-schedule/trigger', undefined, 404],
    ];
    for (const [method, url, payload, status, field] of cases) {
      const res = await stack().app.inject({ method: method as 'GET' | 'POST', url, ...(payload && { payload }) });
      assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
      if (field) assert.equal(res.json<{ field: string }>().field, field);
    }
  });

  it('every shipped schedule runs end to end from its schedule', async () => {
    const shipped = loadSchedules(shippedSchedulesFile, shippedDatasets);
    // A customer with usage in the month monthly-invoicing bills when triggered now: the month before.
    const p = uniqueId('monthly');
    const month = previousMonth(new Date());
    await seedCustomers(stack().pool, p, [{ key: 'a' }]);
    await seedUsage(stack().pool, p, [{ customer: 'a', metric: 'seats', quantity: '2', unitPrice: '7.5', at: `${month}-15T12:00:00Z` }]);
    // The shipped ids on this file's own task queue, triggered rather than waited for.
    await sync(stack(), shipped);
    for (const { id, kind } of shipped) {
      const res = await post(`/schedules/${id}/trigger`);
      assert.equal(res.statusCode, 202, res.body);
      const run = await waitForRun(stack(), res.json<{ runId: string }>().runId);
      assert.deepEqual([run.kind, run.scheduleId], [kind, id]);
      if (id === 'refresh-product-cache') {
        // Shipped paused, pointing at a placeholder API this worker does not allow: it asks nothing.
        assert.equal(run.error?.code, 'UPSTREAM_NOT_ALLOWED', JSON.stringify(run.error));
        continue;
      }
      if (id === 'monthly-invoicing') {
        // It bills every customer with usage in that month, other tests' too: some of theirs have
        // no address or one the mail server refuses (row errors, so the run may end partial).
        assert.ok(['success', 'partial'].includes(run.status), `${id}: ${run.status} ${JSON.stringify(run.error ?? run.result?.error)}`);
        assert.deepEqual(Object.values(run.result!.steps!).map((s) => s.status === 'success' || s.status === 'partial'), [true, true, true, true]);
        for (const e of run.result!.errorSample) assert.ok(['NO_EMAIL_ADDRESS', 'EMAIL_REFUSED'].includes(e.code), JSON.stringify(e));
        const invoice = (await invoicesOf(stack().pool, p, month)).get('a');
        assert.deepEqual([invoice?.status, invoice?.total], ['sent', '1500']);
        assert.equal((await mailTo(`${p}.a@example.com`)).length, 1);
        continue;
      }
      assert.equal(run.status, 'success', `${id}: ${JSON.stringify(run.error ?? run.result?.error)}`);
    }
    await sync(stack(), []);
  });

  it('the CLI syncs, lists, shows, pauses, unpauses, triggers and backfills', async () => {
    const p = uniqueId('cli');
    const file = await writeFixture('schedules.yaml', `schedules:\n  ${p}:\n    cron: "0 2 * * *"\n    kind: aggregate\n`);
    const address = await stack().app.listen({ port: 0, host: '127.0.0.1' });
    const env = { ...process.env, BATCHFLOW_API_URL: address, TASK_QUEUE: stack().config.temporal.taskQueue };
    const cli = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), 'schedules', ...args], { env });
      return stdout.trim();
    };
    assert.match(await cli('sync', '--file', file), new RegExp(`created ${p}`));
    assert.match(await cli('sync', '--file', file), new RegExp(`unchanged ${p}`));
    await waitListed(stack().client, [p]);
    assert.match(await cli('list'), new RegExp(`^${p} +aggregate +0 2 \\* \\* \\* UTC +next `, 'm'));
    assert.equal((JSON.parse(await cli('show', p)) as { id: string }).id, p);
    assert.equal(await cli('pause', p, '--note', 'maintenance'), `${p}: paused (maintenance)`);
    assert.match(await cli('list'), new RegExp(`^${p} .*PAUSED \\(maintenance\\)`, 'm'));
    assert.equal(await cli('unpause', p, '--note', 'done'), `${p}: running (done)`);
    const runId = await cli('trigger', p, '--no-wait');
    assert.ok(runId.startsWith(`${p}-`), runId);
    assert.equal((await waitForRun(stack(), runId)).scheduleId, p);
    assert.match(await cli('backfill', p, '--from', '1994-01-02', '--to', '1994-01-03'), /from 1994-01-02T00:00:00.000Z to 1994-01-03T23:59:59.000Z/);
    await eventually('two backfilled runs', async () => {
      const runs = (await scheduledRuns(stack(), p)).filter((r) => r.scheduledAt?.startsWith('1994-'));
      return runs.length === 2 && runs.every((r) => r.status === 'success') ? runs : undefined;
    });
    await assert.rejects(cli('pause'), (err: { code: number }) => err.code === 64);
  });
});
