import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getRun, ownUsers, seedUsers, startRun, statusCounts, uniqueId, useStackWithWorker, waitForRun } from '../helpers/stack';

describe('bulk update', () => {
  const fixture = useStackWithWorker();
  const pool = () => fixture.stack.pool;

  it('updates exactly the 200,000 rows a filter matches, and touches no other row', async () => {
    const p = uniqueId('bulk');
    await seedUsers(pool(), p, 300_000, { status: 'pending' });
    // Every third user becomes active, so the filter matches 200,000 of 300,000.
    await pool().query(`UPDATE users SET status = 'active' WHERE email LIKE $1 AND split_part(split_part(email, '.', 2), '@', 1)::int % 3 = 0`, [`${p}.%`]);
    const runId = await startRun(fixture.stack, 'bulk-update', {
      dataset: 'users',
      where: { and: [ownUsers(p), { field: 'status', op: 'eq', value: 'pending' }] },
      set: { status: 'inactive', last_login_at: 'now - 1 year' },
      batchSize: 5_000,
    });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error));
    assert.equal(run.result!.counts.succeeded, 200_000);
    assert.equal(run.result!.counts.total, 200_000);
    assert.deepEqual(await statusCounts(pool(), p), { inactive: 200_000, active: 100_000 });
    const { rows } = await pool().query<{ touched: number; stamped: number }>(
      `SELECT count(*) FILTER (WHERE status = 'active' AND (updated_at > TIMESTAMPTZ '2020-01-01' OR last_login_at IS NOT NULL))::int AS touched,
              count(*) FILTER (WHERE status = 'inactive' AND last_login_at < now() - interval '364 days')::int AS stamped
       FROM users WHERE email LIKE $1`,
      [`${p}.%`],
    );
    assert.deepEqual(rows[0], { touched: 0, stamped: 200_000 });
  });

  it('updates by id list, inline and stored, and reports ids that do not exist', async () => {
    const p = uniqueId('ids');
    const ids = await seedUsers(pool(), p, 3_000, { status: 'active' });
    const few = ids.slice(0, 10);
    const small = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', ids: [...few, 999_999_999], set: { status: 'pending' } });
    const smallRun = await waitForRun(fixture.stack, small);
    assert.equal(smallRun.status, 'partial');
    assert.equal(smallRun.result!.counts.succeeded, 10);
    assert.equal(smallRun.result!.preview?.notFound, 1);
    assert.equal(smallRun.result!.errorSample[0]?.code, 'NOT_FOUND');
    assert.equal(smallRun.result!.errorSample[0]?.row, 999_999_999);

    // Longer than the inline limit: the API stores the list; with a filter, only matching ids change.
    const many = ids.slice(0, 2_500);
    const large = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', ids: many, where: { field: 'status', op: 'eq', value: 'active' }, set: { role: 'moderator' }, batchSize: 700 });
    const largeRun = await waitForRun(fixture.stack, large);
    assert.equal(largeRun.status, 'success', JSON.stringify(largeRun.result?.error));
    assert.equal(largeRun.result!.counts.succeeded, 2_490);
    assert.equal(largeRun.result!.counts.skipped, 10);
    const { rows } = await pool().query<{ role: string; n: number }>('SELECT role, count(*)::int AS n FROM users WHERE email LIKE $1 GROUP BY role ORDER BY role', [`${p}.%`]);
    assert.deepEqual(rows, [{ role: 'moderator', n: 2_490 }, { role: 'user', n: 510 }]);
  });

  it('refuses to start when more rows than maxRecords match, and says so', async () => {
    const p = uniqueId('max');
    await seedUsers(pool(), p, 50, { status: 'active' });
    const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, maxRecords: 49 });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'MAX_RECORDS_EXCEEDED');
    assert.match(run.error.message, /50 rows match, more than maxRecords \(49\)/);
    assert.deepEqual(await statusCounts(pool(), p), { active: 50 });
  });

  it('a failed precondition changes nothing', async () => {
    const runId = await startRun(fixture.stack, 'bulk-update', {
      dataset: 'users',
      where: ownUsers(uniqueId('nobody')),
      set: { status: 'inactive' },
      preconditions: { minMatches: 1 },
    });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'PRECONDITION_FAILED');
  });

  it('a dry run returns the count and a sample and changes nothing', async () => {
    const p = uniqueId('dry');
    await seedUsers(pool(), p, 30, { status: 'active' });
    const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, dryRun: true, sampleSize: 3 });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success');
    assert.equal(run.result!.preview!.matched, 30);
    assert.equal(run.result!.preview!.sample!.length, 3);
    assert.deepEqual(run.result!.preview!.sample![0]!.before, { status: 'active' });
    assert.deepEqual(run.result!.preview!.sample![0]!.after, { status: 'inactive' });
    assert.equal(run.result!.counts.succeeded, 0);
    assert.deepEqual(await statusCounts(pool(), p), { active: 30 });
  });

  describe('approval', () => {
    const awaiting = async (p: string, extra: object = {}) => {
      await seedUsers(pool(), p, 20, { status: 'active' });
      const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, requiresConfirmation: true, ...extra });
      const run = await waitForRun(fixture.stack, runId, (r) => r.progress?.step === 'awaiting_approval');
      return { runId, run };
    };
    const decide = (runId: string, decision: string, payload: object = {}) => fixture.stack.app.inject({ method: 'POST', url: `/runs/${runId}/${decision}`, payload });

    it('waits with the preview readable, and applies once approved', async () => {
      const p = uniqueId('approve');
      const { runId, run } = await awaiting(p);
      assert.equal(run.status, 'running');
      assert.equal(run.progress!.preview!.matched, 20);
      assert.ok(run.progress!.approvalDeadline);
      assert.deepEqual(await statusCounts(pool(), p), { active: 20 });
      const res = await decide(runId, 'approve', { comment: 'checked the sample' });
      assert.equal(res.statusCode, 202, res.body);
      const done = await waitForRun(fixture.stack, runId);
      assert.equal(done.status, 'success');
      // Who approved comes from the key; when, from the workflow; the comment from the body.
      const { at, ...approval } = done.result!.approval!;
      assert.deepEqual(approval, { decision: 'approved', by: 'test-admin', comment: 'checked the sample' });
      assert.ok(Date.parse(at) >= Date.parse(done.result!.startedAt) && Date.parse(at) <= Date.parse(done.result!.endedAt), at);
      assert.deepEqual(await statusCounts(pool(), p), { inactive: 20 });
      // Once it has finished there is nothing to approve.
      assert.equal((await decide(runId, 'approve')).statusCode, 409);
    });

    it('the range is fixed when the run plans: rows inserted later are not touched; a row below the highest id that comes to match is', async () => {
      const p = uniqueId('range');
      const ids = await seedUsers(pool(), p, 10, { status: 'active' });
      await pool().query(`UPDATE users SET status = 'pending' WHERE id = $1`, [ids[3]]);
      const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: { and: [ownUsers(p), { field: 'status', op: 'eq', value: 'active' }] }, set: { status: 'inactive' }, requiresConfirmation: true });
      const waiting = await waitForRun(fixture.stack, runId, (r) => r.progress?.step === 'awaiting_approval');
      assert.equal(waiting.progress!.preview!.matched, 9);
      // After planning: a row below the highest matching id comes to match, and a matching row is inserted.
      await pool().query(`UPDATE users SET status = 'active' WHERE id = $1`, [ids[3]]);
      await pool().query(`INSERT INTO users (email, name, status) VALUES ($1, 'Later', 'active')`, [`${p}.later@example.com`]);
      assert.equal((await decide(runId, 'approve')).statusCode, 202);
      const done = await waitForRun(fixture.stack, runId);
      assert.deepEqual([done.status, done.result!.counts.succeeded], ['success', 10]);
      const { rows } = await pool().query<{ email: string; status: string }>('SELECT email, status FROM users WHERE email LIKE $1 AND NOT (id = ANY($2::bigint[]))', [`${p}.%`, ids]);
      assert.deepEqual(rows, [{ email: `${p}.later@example.com`, status: 'active' }], 'the row inserted after planning is left alone');
    });

    it('reject ends it cancelled and changes nothing', async () => {
      const p = uniqueId('reject');
      const { runId } = await awaiting(p);
      assert.equal((await decide(runId, 'reject', { reason: 'wrong filter' })).statusCode, 202);
      const done = await waitForRun(fixture.stack, runId);
      assert.equal(done.status, 'cancelled');
      assert.equal(done.result?.error?.code, 'REJECTED');
      assert.match(done.result.error.message, /rejected by test-admin: wrong filter/);
      assert.deepEqual({ ...done.result.approval, at: undefined }, { decision: 'rejected', by: 'test-admin', at: undefined, comment: 'wrong filter' });
      assert.deepEqual(await statusCounts(pool(), p), { active: 20 });
    });

    it('past its deadline it ends cancelled and changes nothing', async () => {
      const p = uniqueId('deadline');
      const { runId } = await awaiting(p, { confirmationTimeout: '2s' });
      const done = await waitForRun(fixture.stack, runId);
      assert.equal(done.status, 'cancelled');
      assert.equal(done.result?.error?.code, 'APPROVAL_TIMEOUT');
      assert.deepEqual(await statusCounts(pool(), p), { active: 20 });
    });

    it('runs that do not wait cannot be approved', async () => {
      const res = await decide('no-such-run', 'approve');
      assert.equal(res.statusCode, 404);
    });
  });

  it('a batch the database refuses is rolled back alone and reported with its ids; the other batches apply', async () => {
    const p = uniqueId('refused');
    const ids = await seedUsers(pool(), p, 30, { status: 'active' });
    // A trigger stands in for any constraint the dataset's validation cannot see.
    const fn = `refuse_${p.replace(/-/g, '_')}`;
    await pool().query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'row % is frozen', OLD.id; END $$`);
    await pool().query(`CREATE TRIGGER ${fn} BEFORE UPDATE ON users FOR EACH ROW WHEN (OLD.id = ${ids[14]!}) EXECUTE FUNCTION ${fn}()`);
    try {
      const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, batchSize: 10 });
      const run = await waitForRun(fixture.stack, runId);
      assert.equal(run.status, 'partial');
      assert.deepEqual({ succeeded: run.result!.counts.succeeded, failed: run.result!.counts.failed }, { succeeded: 20, failed: 10 });
      const error = run.result!.errorSample[0]!;
      assert.equal(error.code, 'BATCH_FAILED');
      assert.match(error.message, /frozen/);
      // The batch's ids are stored with its error, not carried in the result (workflow history).
      assert.equal('raw' in error, false);
      const stored = (await fixture.stack.app.inject({ method: 'GET', url: `/runs/${runId}/errors` })).json<{ errors: { raw: { ids: number[] } }[] }>().errors;
      assert.deepEqual(stored[0]!.raw.ids, ids.slice(10, 20));
      assert.deepEqual(await statusCounts(pool(), p), { inactive: 20, active: 10 });
    } finally {
      await pool().query(`DROP TRIGGER ${fn} ON users; DROP FUNCTION ${fn}()`);
    }
  });

  it('cancel mid-run stops after a batch: every batch fully applied or not at all', async () => {
    const p = uniqueId('cancel');
    await seedUsers(pool(), p, 60_000, { status: 'active' });
    // Each batch's update takes at least 50 ms, so that the cancel lands mid-run however fast the machine.
    const fn = `slow_${p.replace(/-/g, '_')}`;
    await pool().query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$`);
    await pool().query(`CREATE TRIGGER ${fn} BEFORE UPDATE ON users FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`);
    try {
      const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, batchSize: 500 });
      await waitForRun(fixture.stack, runId, (r) => (r.progress?.counts.succeeded ?? 0) > 0);
      assert.equal((await fixture.stack.app.inject({ method: 'POST', url: `/runs/${runId}/cancel` })).statusCode, 202);
      const run = await waitForRun(fixture.stack, runId);
      assert.equal(run.status, 'cancelled');
      const changed = (await statusCounts(pool(), p)).inactive ?? 0;
      assert.equal(changed, run.result!.counts.succeeded);
      assert.ok(changed < 60_000, 'the run stopped before the end');
      assert.equal(changed % 500, 0, 'only whole batches');
    } finally {
      await pool().query(`DROP TRIGGER ${fn} ON users; DROP FUNCTION ${fn}()`);
    }
  });

  describe('filters that try SQL are refused with a 400, and the table stays intact', () => {
    const cases: [string, object, string][] = [
      ['a field with SQL', { field: 'status; drop table users', op: 'eq', value: 'x' }, 'params.where.field'],
      ['an unknown operator', { field: 'status', op: '= 1 or 1=1 --', value: 'x' }, 'params.where.op'],
      ['a quote in an enumerated value', { field: 'status', op: 'eq', value: "' or 1=1 --" }, 'params.where.value'],
      ['raw SQL as the filter', 'status = 1 or 1=1' as unknown as object, 'params.where'],
      ['a nested bad field', { or: [{ field: 'email', op: 'eq', value: 'a@example.com' }, { field: '1=1) --', op: 'is_null' }] }, 'params.where.or.1.field'],
    ];
    for (const [name, where, field] of cases) {
      it(name, async () => {
        const res = await fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'bulk-update', params: { dataset: 'users', where, set: { status: 'inactive' } } } });
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json<{ field: string }>().field, field);
      });
    }

    it('a quote in a free-text value is only ever a value', async () => {
      const p = uniqueId('inject');
      await seedUsers(pool(), p, 5, { status: 'active' });
      const runId = await startRun(fixture.stack, 'bulk-update', {
        dataset: 'users',
        where: { and: [ownUsers(p), { field: 'name', op: 'eq', value: "' or 1=1 --" }] },
        set: { status: 'inactive' },
      });
      const run = await waitForRun(fixture.stack, runId);
      assert.equal(run.status, 'success');
      assert.equal(run.result!.counts.succeeded, 0);
      assert.deepEqual(await statusCounts(pool(), p), { active: 5 });
    });

    it('set values are checked against the dataset', async () => {
      for (const [set, field] of [
        [{ status: 'archived' }, 'params.set.status'],
        [{ email: 'x@y.z' }, 'params.set.email'],
        [{ 'name = 1; --': 'x' }, 'params.set.name = 1; --'],
        [{ name: null }, 'params.set.name'],
      ] as const) {
        const res = await fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'bulk-update', params: { dataset: 'users', where: ownUsers('x'), set } } });
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json<{ field: string }>().field, field);
      }
    });
  });

  it('progress reports the total and the step while it runs', async () => {
    const p = uniqueId('progress');
    await seedUsers(pool(), p, 20_000, { status: 'active' });
    const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'pending' }, batchSize: 200 });
    const running = await waitForRun(fixture.stack, runId, (r) => r.progress?.step === 'updating' && r.progress.counts.processed > 0);
    assert.equal(running.progress!.counts.total, 20_000);
    const done = await waitForRun(fixture.stack, runId);
    assert.equal(done.status, 'success');
    assert.equal((await getRun(fixture.stack, runId)).result!.counts.succeeded, 20_000);
  });
});
