import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import type { RunView } from '../../src/api/runs';
import { jobKinds } from '../../src/jobs';
import { ownUsers, repoRoot, seedUsers, startRun, statusCounts, uniqueId, useStackWithWorker, waitForRun, type Stack } from '../helpers/stack';

interface Step {
  name: string;
  kind: string;
  params: Record<string, unknown>;
  dependsOn?: string[];
}

const exampleFile = path.join(repoRoot, 'examples/migrate_user_data.yaml');

/**
 * The example with every step narrowed to the users whose emails start with `prefix`, so it
 * leaves other tests' rows alone: each filter gets `and` the prefix, validate_data gets one.
 */
function scopedExample(prefix: string): { steps: Step[] } {
  const example = YAML.parse(fs.readFileSync(exampleFile, 'utf8')) as { steps: Step[] };
  const narrow = (where: unknown) => (where === undefined ? ownUsers(prefix) : { and: [where, ownUsers(prefix)] });
  for (const { params } of example.steps) {
    if (params.step === 'validate_data' || params.where !== undefined) params.where = narrow(params.where);
    if (Array.isArray(params.rules)) params.rules = params.rules.map((rule: { where: unknown }) => ({ ...rule, where: narrow(rule.where) }));
  }
  return example;
}

const stepSummary = (run: RunView) => Object.fromEntries(Object.entries(run.result!.steps!).map(([name, s]) => [name, s.status]));

/** Polls a pipeline step's own run until it waits for approval (it may not exist yet at first). */
async function awaitingApproval(stack: Stack, runId: string, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    const res = await stack.app.inject({ method: 'GET', url: `/runs/${runId}` });
    if (res.statusCode === 200 && res.json<RunView>().progress?.step === 'awaiting_approval') return;
  }
  throw new Error(`${runId} did not reach awaiting_approval`);
}

async function post(stack: Stack, url: string): Promise<void> {
  const res = await stack.app.inject({ method: 'POST', url });
  assert.equal(res.statusCode, 202, res.body);
}

describe('pipeline', () => {
  const fixture = useStackWithWorker();
  const pool = () => fixture.stack.pool;

  it('the shipped migrate_user_data example parses with the pipeline schema', () => {
    const parsed = jobKinds.pipeline.schema.safeParse(YAML.parse(fs.readFileSync(exampleFile, 'utf8')));
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    assert.deepEqual(
      parsed.data.steps.map((s) => [s.name, s.kind, s.dependsOn]),
      [
        ['validate_data', 'custom', []],
        ['update_profiles', 'bulk-update', ['validate_data']],
        ['cleanup_legacy', 'cleanup', ['update_profiles']],
      ],
    );
  });

  it('runs the example: validate, then update the pending profiles, then delete the long soft-deleted users', async () => {
    const p = uniqueId('migrate');
    // 30 users: 10 each active, pending and inactive, all signed up in 2024.
    const ids = await seedUsers(pool(), p, 30);
    const inactive = ids.filter((_, i) => (i + 1) % 3 === 2);
    await pool().query(`UPDATE users SET deleted_at = now() - interval '40 days' WHERE id = ANY($1::bigint[])`, [inactive.slice(0, 3)]);
    await pool().query(`UPDATE users SET deleted_at = now() - interval '10 days' WHERE id = ANY($1::bigint[])`, [inactive.slice(3, 5)]);

    const run = await waitForRun(fixture.stack, await startRun(fixture.stack, 'pipeline', scopedExample(p)));
    assert.equal(run.status, 'success', JSON.stringify(run.result ?? run.error));
    const steps = run.result!.steps!;
    assert.deepEqual(
      Object.entries(steps).map(([name, s]) => [name, s.status, s.counts?.succeeded]),
      [
        ['validate_data', 'success', 30],
        ['update_profiles', 'success', 10],
        ['cleanup_legacy', 'success', 3],
      ],
    );
    assert.equal(steps.update_profiles!.runId, `${run.runId}.update_profiles`);
    assert.deepEqual(await statusCounts(pool(), p), { active: 20, inactive: 7 });
  });

  it('a failed middle step skips its dependants, which change nothing', async () => {
    const p = uniqueId('fail');
    await seedUsers(pool(), p, 12);
    const before = await statusCounts(pool(), p);
    const run = await waitForRun(
      fixture.stack,
      await startRun(fixture.stack, 'pipeline', {
        steps: [
          { name: 'check', kind: 'custom', params: { step: 'validate_data', dataset: 'users', where: ownUsers(p) } },
          // Four users are pending: more than maxRecords, so this step refuses to start.
          { name: 'activate', kind: 'bulk-update', dependsOn: ['check'], params: { dataset: 'users', where: { and: [ownUsers(p), { field: 'status', op: 'eq', value: 'pending' }] }, set: { status: 'active' }, maxRecords: 0 } },
          { name: 'deactivate', kind: 'bulk-update', dependsOn: ['activate'], params: { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' } } },
          { name: 'report', kind: 'custom', dependsOn: ['deactivate'], params: { step: 'validate_data', dataset: 'users', where: ownUsers(p) } },
        ],
      }),
    );
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'STEP_FAILED');
    assert.match(run.error.message, /step activate failed: 4 rows match, more than maxRecords \(0\)/);
    assert.deepEqual(stepSummary(run), { check: 'success', activate: 'failed', deactivate: 'skipped', report: 'skipped' });
    const steps = run.result!.steps!;
    assert.equal(steps.activate!.error?.code, 'MAX_RECORDS_EXCEEDED');
    assert.equal(steps.deactivate!.reason, 'depends on activate, which failed');
    assert.equal(steps.report!.reason, 'depends on deactivate, which was skipped');
    assert.deepEqual(await statusCounts(pool(), p), before);
  });

  it("a bulk-update step's long id list is stored, not carried in the pipeline's history", async () => {
    const p = uniqueId('pids');
    const ids = await seedUsers(pool(), p, 1_500, { status: 'active' });
    const runId = await startRun(fixture.stack, 'pipeline', { steps: [{ name: 'deactivate', kind: 'bulk-update', params: { dataset: 'users', ids, set: { status: 'inactive' } } }] });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.error));
    assert.deepEqual(await statusCounts(pool(), p), { inactive: 1_500 });
    const { events } = await fixture.stack.client.workflow.getHandle(runId).fetchHistory();
    const input = JSON.parse(Buffer.from(events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!.data!).toString()) as { params: { steps: Step[] } };
    const stepParams = input.params.steps[0]!.params;
    assert.equal(stepParams.ids, undefined);
    assert.match(String(stepParams.idList), /^[0-9a-f]{64}$/);
  });

  it('runs independent steps side by side, never more than maxParallel at once', async () => {
    const p = uniqueId('par');
    await seedUsers(pool(), p, 9);
    // Each independent step waits for approval, so the steps running at once can be seen, not raced.
    const waiting = (status: string, set: object) => ({ dataset: 'users', where: { and: [ownUsers(p), { field: 'status', op: 'eq', value: status }] }, set, requiresConfirmation: true });
    const runId = await startRun(fixture.stack, 'pipeline', {
      maxParallel: 2,
      steps: [
        { name: 'admins', kind: 'bulk-update', params: waiting('active', { role: 'admin' }) },
        { name: 'moderators', kind: 'bulk-update', params: waiting('pending', { role: 'moderator' }) },
        { name: 'stamp', kind: 'bulk-update', params: waiting('inactive', { last_login_at: 'now' }) },
        { name: 'check', kind: 'custom', dependsOn: ['admins', 'moderators', 'stamp'], params: { step: 'validate_data', dataset: 'users', where: ownUsers(p) } },
      ],
    });
    const steps = async () => (await waitForRun(fixture.stack, runId, () => true)).progress?.steps;
    await awaitingApproval(fixture.stack, `${runId}.admins`);
    await awaitingApproval(fixture.stack, `${runId}.moderators`);
    assert.deepEqual(
      Object.values((await steps())!).map((s) => s.status),
      ['running', 'running', 'pending', 'pending'],
    );

    await post(fixture.stack, `/runs/${runId}.admins/approve`);
    await awaitingApproval(fixture.stack, `${runId}.stamp`);
    assert.equal((await steps())!.admins!.status, 'success');
    await post(fixture.stack, `/runs/${runId}.moderators/approve`);
    await post(fixture.stack, `/runs/${runId}.stamp/approve`);

    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result ?? run.error));
    assert.deepEqual(stepSummary(run), { admins: 'success', moderators: 'success', stamp: 'success', check: 'success' });
    assert.equal(run.result!.steps!.check!.counts?.succeeded, 9);
    const { rows } = await pool().query<{ role: string; stamped: number }>(
      'SELECT role, count(last_login_at)::int AS stamped FROM users WHERE email LIKE $1 GROUP BY role ORDER BY role',
      [`${p}.%`],
    );
    assert.deepEqual(rows, [{ role: 'admin', stamped: 0 }, { role: 'moderator', stamped: 0 }, { role: 'user', stamped: 3 }]);
  });

  describe('bad dependencies get a 400 naming the field', () => {
    const step = (name: string, dependsOn: string[]) => ({ name, kind: 'custom', params: { step: 'validate_data', dataset: 'users' }, dependsOn });
    const cases: [string, object[], string, RegExp][] = [
      ['a cycle', [step('a', []), step('b', ['c']), step('c', ['b'])], 'params.steps', /cycle: b → c → b/],
      ['a step that depends on itself', [step('a', ['a'])], 'params.steps', /cycle: a → a/],
      ['an unknown dependsOn', [step('a', []), step('b', ['a', 'nope'])], 'params.steps.1.dependsOn.1', /no step named "nope"/],
      ['a step name twice', [step('a', []), step('a', [])], 'params.steps.1.name', /appears twice/],
      ['a step whose params are bad', [{ name: 'a', kind: 'bulk-update', params: { dataset: 'users', where: { field: 'status; drop table users', op: 'eq', value: 'x' }, set: { status: 'active' } } }], 'params.steps.0.params.where.field', /must be a column of users/],
      ['a pipeline inside a pipeline', [{ name: 'a', kind: 'pipeline', params: {} }], 'params.steps.0.kind', /import|bulk-update/],
    ];
    for (const [name, steps, field, message] of cases) {
      it(name, async () => {
        const res = await fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'pipeline', params: { steps } } });
        assert.equal(res.statusCode, 400, res.body);
        const body = res.json<{ field: string; message: string }>();
        assert.equal(body.field, field, body.message);
        assert.match(body.message, message);
      });
    }
  });

  it('cancel mid-run stops the running step and skips the rest: status cancelled, nothing changed', async () => {
    const p = uniqueId('pcancel');
    await seedUsers(pool(), p, 6);
    const before = await statusCounts(pool(), p);
    const runId = await startRun(fixture.stack, 'pipeline', {
      steps: [
        { name: 'hold', kind: 'bulk-update', params: { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, requiresConfirmation: true } },
        { name: 'after', kind: 'bulk-update', dependsOn: ['hold'], params: { dataset: 'users', where: ownUsers(p), set: { status: 'pending' } } },
      ],
    });
    await awaitingApproval(fixture.stack, `${runId}.hold`);
    await post(fixture.stack, `/runs/${runId}/cancel`);
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'cancelled', JSON.stringify(run.result ?? run.error));
    assert.deepEqual(stepSummary(run), { hold: 'cancelled', after: 'skipped' });
    assert.equal(run.result!.steps!.after!.reason, 'the pipeline was cancelled');
    assert.equal((await waitForRun(fixture.stack, `${runId}.hold`)).status, 'cancelled');
    assert.deepEqual(await statusCounts(pool(), p), before);
  });
});
