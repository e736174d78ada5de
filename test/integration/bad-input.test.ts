import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { ownUsers, seedUsers, uniqueId, useStackWithWorker, waitForRun } from '../helpers/stack';

/**
 * The bad-input suite on the real stack: every request here is refused with a 4xx whose message
 * names the field, nothing is started, no row changes, and nothing is a 5xx.
 */
describe('bad input', () => {
  const fixture = useStackWithWorker();
  const p = uniqueId('bad');
  const mine = ownUsers(p);

  before(async () => {
    await seedUsers(fixture.stack.pool, p, 20);
  });

  /** A digest of every table a run could change, and of the audit log's starts. */
  async function snapshot(): Promise<Record<string, string>> {
    const tables = ['users', 'products', 'sessions', 'password_reset_tokens', 'verification_tokens'];
    const out: Record<string, string> = {};
    for (const table of tables) {
      const { rows } = await fixture.stack.pool.query<{ digest: string }>(`SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) AS digest FROM ${table} t`);
      out[table] = rows[0]!.digest;
    }
    const { rows } = await fixture.stack.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE action IN ('start', 'cancel', 'approve', 'reject', 'upload')");
    out.actions = String(rows[0]!.n);
    return out;
  }

  const users = (extra: object) => ({ kind: 'bulk-update', params: { dataset: 'users', where: mine, set: { status: 'inactive' }, ...extra } });
  const where = (filter: unknown) => users({ where: filter });
  const set = (values: unknown) => users({ set: values });
  const rule = (extra: object) => ({ kind: 'cleanup', params: { rules: [{ name: 'mine', dataset: 'users', where: mine, ...extra }] } });
  const step = (kind: string, params: object, extra: object = {}) => ({ kind: 'pipeline', params: { steps: [{ name: 'one', kind, params, ...extra }] } });
  /** A bulk update whose filter is `depth` levels deep, as JSON text (JSON.stringify itself would overflow the stack). */
  const nested = (depth: number, open: string, close: string) =>
    raw(`{"kind":"bulk-update","params":{"dataset":"users","set":{"status":"inactive"},"where":${open.repeat(depth)}${JSON.stringify(mine)}${close.repeat(depth)}}}`);
  const post = (payload: unknown): InjectOptions => ({ method: 'POST', url: '/runs', payload: payload as object });
  const raw = (body: string, contentType = 'application/json'): InjectOptions => ({ method: 'POST', url: '/runs', payload: body, headers: { 'content-type': contentType } });
  const get = (url: string): InjectOptions => ({ method: 'GET', url });

  // [what, request, status, the field an issue names (undefined: none), what its message says]
  const cases: [string, InjectOptions, number, string | undefined, RegExp][] = [
    // Malformed bodies.
    ['cut-off JSON', raw('{"kind": '), 400, undefined, /JSON/i],
    ['not JSON at all', raw("kind=import&params=x"), 400, undefined, /JSON/i],
    ['a JSON array', raw('[{"kind": "import"}]'), 400, undefined, /object/i],
    ['JSON null', raw('null'), 400, undefined, /./],
    ['a JSON string', raw('"import"'), 400, undefined, /./],
    ['form encoding', raw('kind=import', 'application/x-www-form-urlencoded'), 415, undefined, /content-type "application\/x-www-form-urlencoded" is not accepted here: send application\/json/],
    ['a body over 10 MB', raw(JSON.stringify({ kind: 'import', params: { source: '/x.csv', dataset: 'users', mapping: { a: 'x'.repeat(11 * 1024 * 1024) } } })), 413, undefined, /too large/i],
    // Unknown and misspelt keys, in every kind and nested.
    ['runId misspelt', post({ kind: 'cleanup', runid: 'x', params: {} }), 400, 'runid', /did you mean "runId"\?/],
    ['import: Mode', post({ kind: 'import', params: { source: '/x.csv', dataset: 'users', Mode: 'insert' } }), 400, 'params.Mode', /did you mean "mode"\?/],
    ['import: stop_on_error as a key', post({ kind: 'import', params: { source: '/x.csv', dataset: 'users', stopOnError: true } }), 400, 'params.stopOnError', /Unrecognized key: "stopOnError" \(known: /],
    ['bulk-update: dryrun', post(users({ dryrun: true })), 400, 'params.dryrun', /did you mean "dryRun"\?/],
    ['bulk-update: requireConfirmation', post(users({ requireConfirmation: true })), 400, 'params.requireConfirmation', /did you mean "requiresConfirmation"\?/],
    ['bulk-update: maxrecords', post(users({ maxrecords: 1 })), 400, 'params.maxrecords', /did you mean "maxRecords"\?/],
    ['bulk-update: preconditions.minmatches', post(users({ preconditions: { minmatches: 1 } })), 400, 'params.preconditions.minmatches', /did you mean "minMatches"\?/],
    ['bulk-update: a filter key', post(where({ fiel: 'status', op: 'eq', value: 'active' })), 400, 'params.where.fiel', /did you mean "field"\?/],
    ['bulk-update: a nested filter key', post(where({ and: [mine, { not: { field: 'status', op: 'eq', valeu: 'x' } }] })), 400, 'params.where.and.1.not.valeu', /did you mean "value"\?/],
    ['bulk-update: a combinator in capitals', post(where({ AND: [mine] })), 400, 'params.where.AND', /did you mean "and"\?/],
    ['bulk-update: a set column', post(set({ stauts: 'inactive' })), 400, 'params.set.stauts', /did you mean "status"\?/],
    ['cleanup: dry_run', post({ kind: 'cleanup', params: { dry_run: true } }), 400, 'params.dry_run', /did you mean "dryRun"\?/],
    ['cleanup: a rule key', post(rule({ batchsize: 10 })), 400, 'params.rules.0.batchsize', /did you mean "batchSize"\?/],
    ['cleanup: a rule filter key', post(rule({ where: { field: 'status', opp: 'eq', value: 'x' } })), 400, 'params.rules.0.where.opp', /did you mean "op"\?/],
    ['custom: batchsize', post({ kind: 'custom', params: { step: 'validate_data', dataset: 'users', batchsize: 10 } }), 400, 'params.batchsize', /did you mean "batchSize"\?/],
    ['pipeline: maxparallel', post({ kind: 'pipeline', params: { steps: [{ name: 'a', kind: 'cleanup', params: {} }], maxparallel: 1 } }), 400, 'params.maxparallel', /did you mean "maxParallel"\?/],
    ['pipeline: a step key', post(step('cleanup', {}, { depends_on: [] })), 400, 'params.steps.0.depends_on', /did you mean "dependsOn"\?/],
    ['pipeline: a step param', post(step('bulk-update', { ...users({}).params, dryrun: true })), 400, 'params.steps.0.params.dryrun', /did you mean "dryRun"\?/],
    ['pipeline: a step cleanup rule key', post(step('cleanup', rule({ wher: mine }).params)), 400, 'params.steps.0.params.rules.0.wher', /did you mean "where"\?/],
    ['pipeline: a step precondition', post(step('bulk-update', users({ preconditions: { maxMatchs: 1 } }).params)), 400, 'params.steps.0.params.preconditions.maxMatchs', /did you mean "maxMatches"\?/],
    ['cancel body', { method: 'POST', url: '/runs/x/cancel', payload: { reasn: 'x' } }, 400, 'reasn', /did you mean "reason"\?/],
    ['approve body: by', { method: 'POST', url: '/runs/x/approve', payload: { by: 'mallory' } }, 400, 'by', /Unrecognized key: "by" \(known: comment\)/],
    ['reject body: comment', { method: 'POST', url: '/runs/x/reject', payload: { reson: 'x' } }, 400, 'reson', /did you mean "reason"\?/],
    ['list query key', get('/runs?kindd=import'), 400, 'kindd', /did you mean "kind"\?/],
    ['errors query key', get('/runs/x/errors?limt=5'), 400, 'limt', /did you mean "limit"\?/],
    // SQL where a name is expected: field names, operators, set columns, datasets.
    ['SQL as a filter field', post(where({ field: 'email; DROP TABLE users; --', op: 'eq', value: 'x' })), 400, 'params.where.field', /must be a column of users/],
    ['a quoted identifier as a filter field', post(where({ field: 'id" OR 1=1 --', op: 'eq', value: 1 })), 400, 'params.where.field', /must be a column of users/],
    ['SQL as an operator', post(where({ field: 'id', op: '= 1 OR 1=1 --', value: 1 })), 400, 'params.where.op', /must be one of eq/],
    ['SQL as a set column', post(set({ "status = 'inactive', role": 'admin' })), 400, "params.set.status = 'inactive', role", /is not a column of users/],
    ['setting the key column', post(set({ email: 'x@example.com' })), 400, 'params.set.email', /is the key of users/],
    ['setting a system column', post(set({ id: 1 })), 400, 'params.set.id', /is not a column of users/],
    ['SQL as a dataset', post({ kind: 'bulk-update', params: { dataset: 'users; DROP TABLE users', where: mine, set: { status: 'active' } } }), 400, 'params.dataset', /must be a dataset name/],
    ['SQL as a cleanup rule field', post(rule({ where: { field: '1=1) OR (1', op: 'not_null' } })), 400, 'params.rules.0.where.field', /must be a column of users/],
    ['SQL as a validate_data operator', post({ kind: 'custom', params: { step: 'validate_data', dataset: 'users', where: { field: 'id', op: 'IN (SELECT id FROM users)' } } }), 400, 'params.where.op', /must be one of/],
    ['SQL as a pipeline step field', post(step('bulk-update', where({ field: 'role; --', op: 'eq', value: 'x' }).params)), 400, 'params.steps.0.params.where.field', /must be a column of users/],
    // SQL where a typed value is expected.
    ['SQL as an integer', post(where({ field: 'id', op: 'eq', value: '1 OR 1=1' })), 400, 'params.where.value', /must be a number/],
    ['SQL as a date', post(where({ field: 'signup_date', op: 'lt', value: "2024-01-01'; DROP TABLE users; --" })), 400, 'params.where.value', /must be a date/],
    ['SQL as a timestamp', post(where({ field: 'created_at', op: 'gt', value: "now() OR true" })), 400, 'params.where.value', /ISO timestamp/],
    ['SQL in a list', post(where({ field: 'id', op: 'in', value: [1, '2); DROP TABLE users; --'] })), 400, 'params.where.value.1', /must be a number/],
    ['SQL as an enum value', post(set({ role: "admin' --" })), 400, 'params.set.role', /must be one of user, admin, moderator/],
    ['SQL as a date in set', post(set({ signup_date: "now(); DROP TABLE users" })), 400, 'params.set.signup_date', /./],
    ['SQL as a price', post({ kind: 'bulk-update', params: { dataset: 'products', where: { field: 'sku', op: 'eq', value: 'x' }, set: { price: '1; DELETE FROM products' } } }), 400, 'params.set.price', /number/],
    // JSON where a scalar is expected.
    ['an operator object as a value', post(where({ field: 'id', op: 'gt', value: { $gt: 0 } })), 400, 'params.where.value', /must be a number/],
    ['an object as a text value', post(where({ field: 'email', op: 'eq', value: { toString: 'x' } })), 400, 'params.where.value', /must be a string/],
    ['a list for eq', post(where({ field: 'email', op: 'eq', value: ['a', 'b'] })), 400, 'params.where.value', /./],
    ['an object in set', post(set({ name: { $set: 'x' } })), 400, 'params.set.name', /must be text/],
    ['a list in set', post(set({ status: ['active'] })), 400, 'params.set.status', /./],
    ['an object as the dataset', post({ kind: 'bulk-update', params: { dataset: { $ne: null }, where: mine, set: { status: 'active' } } }), 400, 'params.dataset', /./],
    ['a string as the filter', post(where("status = 'active' OR 1=1")), 400, 'params.where', /must be a filter object/],
    ['a list as the filter', post(where([mine])), 400, 'params.where', /must be a filter object/],
    ['a string as batchSize', post(users({ batchSize: '1000; --' })), 400, 'params.batchSize', /number/],
    ['an object as dryRun', post(users({ dryRun: { value: false } })), 400, 'params.dryRun', /boolean/],
    ['an object as ids', post({ kind: 'bulk-update', params: { dataset: 'users', ids: { $in: [1] }, set: { status: 'active' } } }), 400, 'params.ids', /array/],
    ['too many list values', post(where({ field: 'id', op: 'in', value: Array.from({ length: 10_001 }, (_, i) => i + 1) })), 400, 'params.where.value', /./],
    // Filters nested thousands deep.
    ['not nested 5,000 deep', nested(5_000, '{"not":', '}'), 400, 'params.where.not.not.not.not.not.not.not.not.not.not.not', /at most 10 levels/],
    ['and nested 3,000 deep', nested(3_000, '{"and":[', ']}'), 400, 'params.where.and.0.and.0.and.0.and.0.and.0.and.0.and.0.and.0.and.0.and.0.and.0', /at most 10 levels/],
    // Injection in query strings and paths.
    ['SQL in the dataset filter', get(`/runs?dataset=${encodeURIComponent("users' OR BatchflowKind='import")}`), 400, 'dataset', /must be a dataset name/],
    ['SQL in the status filter', get(`/runs?status=${encodeURIComponent("running' OR '1'='1")}`), 400, 'status', /./],
    ['SQL in the kind filter', get(`/runs?kind=${encodeURIComponent('import OR 1=1')}`), 400, 'kind', /Invalid option/],
    ['SQL in the startedBy filter', get(`/runs?startedBy=${encodeURIComponent("x' OR 'a'='a")}`), 400, 'startedBy', /must be 1-64 letters/],
    ['SQL in the audit actor', get(`/audit?actor=${encodeURIComponent("x' OR '1'='1")}`), 400, 'actor', /must be 1-64 letters/],
    ['SQL in the audit runId', get(`/audit?runId=${encodeURIComponent("x'; DROP TABLE audit_log; --")}`), 400, 'runId', /may contain only/],
    ['SQL in a run id', get(`/runs/${encodeURIComponent("x' OR '1'='1")}`), 400, 'id', /may contain only/],
    ['SQL in the errors cursor', get(`/runs/x/errors?after=${encodeURIComponent('0 OR 1=1')}`), 400, 'after', /number/],
    ['JSON in a query value', get(`/runs?limit=${encodeURIComponent('{"$gt":0}')}`), 400, 'limit', /number/],
  ];

  it('each bad request gets a 4xx naming the field, nothing starts, no row changes', async () => {
    const before = await snapshot();
    const failures: string[] = [];
    for (const [what, request, status, field, message] of cases) {
      const res = await fixture.stack.app.inject(request);
      const body = res.json<{ error: string; message: string; field?: string; issues?: { field: string; message: string }[] }>();
      const named = field === undefined || [body.field, ...(body.issues ?? []).map((i) => i.field)].includes(field);
      const said = message.test(body.message) && (field === undefined || body.message.includes(`${field}: `));
      if (res.statusCode !== status || !named || !said) failures.push(`${what}: ${res.statusCode} ${res.body.slice(0, 400)}`);
      assert.ok(res.statusCode < 500, `${what}: a 5xx: ${res.body}`);
    }
    assert.deepEqual(failures, []);
    assert.deepEqual(await snapshot(), before, 'no row changed and nothing started');
  });

  it('SQL in a text value is data: bound as a parameter, matched literally, stored literally', async () => {
    const before = await snapshot();
    const sql = "x' OR '1'='1'; DROP TABLE users; --";
    const dry = await fixture.stack.app.inject(post({ kind: 'bulk-update', runId: uniqueId('sql-value'), params: { dataset: 'users', where: { field: 'name', op: 'eq', value: sql }, set: { status: 'inactive' }, dryRun: true } }));
    assert.equal(dry.statusCode, 202, dry.body);
    const dryRun = await waitForRun(fixture.stack, dry.json<{ runId: string }>().runId);
    assert.equal(dryRun.result!.preview!.matched, 0, 'matches nothing: the quote is part of the value');
    assert.deepEqual({ ...(await snapshot()), actions: before.actions }, before);

    const name = "Robert'); DROP TABLE users; --";
    const runId = uniqueId('sql-set');
    assert.equal((await fixture.stack.app.inject(post({ kind: 'bulk-update', runId, params: { dataset: 'users', where: mine, set: { name } } }))).statusCode, 202);
    assert.equal((await waitForRun(fixture.stack, runId)).status, 'success');
    const { rows } = await fixture.stack.pool.query<{ name: string; n: number }>('SELECT name, count(*)::int AS n FROM users WHERE email LIKE $1 GROUP BY name', [`${p}.%`]);
    assert.deepEqual(rows, [{ name, n: 20 }]);
  });
});
