import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { searchAttributes } from '../../src/jobs';
import type { AuditEntry } from '../../src/api/audit';
import type { KeyInfo } from '../../src/api/keys';
import { openStack, ownUsers, seedUsers, startWorker, statusCounts, testConfig, uniqueId, useStackWithWorker, waitForRun, type Stack } from '../helpers/stack';

const json = <T>(res: { json: () => unknown }) => res.json() as T;

describe('API keys and scopes', () => {
  const fixture = useStackWithWorker();
  const stack = () => fixture.stack;

  it('every route but /health and the docs needs a key; a missing, malformed, unknown, wrong or revoked one gets the same 401', async () => {
    const key = await stack().createKey(uniqueId('soon-revoked'), ['read']);
    const [, id, secret] = /^bf_([0-9a-f]{16})_(.{43})$/.exec(key)!;
    assert.equal(Buffer.from(secret!, 'base64url').length, 32, '256 random bits');
    const wrongSecret = `bf_${id}_${'A'.repeat(43)}`;
    const unknownId = `bf_${'0'.repeat(16)}_${secret}`;
    assert.equal((await stack().injectAs(key, { method: 'DELETE', url: `/keys/${id}` })).statusCode, 403, 'a read key cannot revoke');
    assert.equal((await stack().app.inject({ method: 'DELETE', url: `/keys/${id}` })).statusCode, 200);

    const answers = [];
    for (const authorization of [undefined, 'Bearer', 'Bearer nonsense', `Basic ${key}`, `Bearer ${wrongSecret}`, `Bearer ${unknownId}`, `Bearer ${key}`]) {
      const res = await stack().injectAs(null, { method: 'GET', url: '/runs', headers: authorization ? { authorization } : {} });
      assert.equal(res.statusCode, 401, `${authorization}: ${res.body}`);
      assert.equal(res.headers['www-authenticate'], 'Bearer');
      answers.push(res.body);
    }
    assert.equal(new Set(answers).size, 1, 'the same answer whatever was wrong');
    assert.match(answers[0]!, /"error":"UNAUTHORIZED"/);
    // Unknown routes too: they tell nothing to a caller without a key.
    assert.equal((await stack().injectAs(null, { method: 'GET', url: '/no-such-route' })).statusCode, 401);
    assert.equal((await stack().app.inject({ method: 'GET', url: '/no-such-route' })).statusCode, 404);

    for (const url of ['/health', '/openapi.json', '/docs/']) {
      assert.equal((await stack().injectAs(null, { method: 'GET', url })).statusCode, 200, url);
    }
    const spec = json<{ components: { securitySchemes: object }; security: object[] }>(await stack().injectAs(null, { method: 'GET', url: '/openapi.json' }));
    assert.deepEqual(spec.security, [{ apiKey: [] }]);
  });

  it('a key without the scope a route needs gets a 403 naming it; admin may do everything', async () => {
    const reader = await stack().createKey(uniqueId('reader'), ['read']);
    const runner = await stack().createKey(uniqueId('runner'), ['run']);
    const approver = await stack().createKey(uniqueId('approver'), ['approve']);
    const start = { method: 'POST' as const, url: '/runs', payload: { kind: 'cleanup', params: { dryRun: true } } };
    const cases: [key: string, request: Parameters<Stack['injectAs']>[1] & { url: string }, scope: string][] = [
      [reader, start, 'run'],
      [reader, { method: 'POST', url: '/runs/x/cancel' }, 'run'],
      [reader, { method: 'POST', url: '/runs/x/approve' }, 'approve'],
      [runner, { method: 'GET', url: '/runs' }, 'read'],
      [runner, { method: 'POST', url: '/runs/x/reject' }, 'approve'],
      [approver, start, 'run'],
      [approver, { method: 'GET', url: '/runs/x' }, 'read'],
      [reader, { method: 'GET', url: '/keys' }, 'admin'],
      [runner, { method: 'POST', url: '/keys', payload: { name: 'x', scopes: ['admin'] } }, 'admin'],
      [approver, { method: 'GET', url: '/audit' }, 'admin'],
      [reader, { method: 'POST', url: '/uploads', payload: 'a,b\n' }, 'run'],
    ];
    for (const [key, request, scope] of cases) {
      const res = await stack().injectAs(key, request);
      assert.equal(res.statusCode, 403, `${request.method} ${request.url}: ${res.body}`);
      assert.equal(json<{ error: string }>(res).error, 'FORBIDDEN');
      assert.match(json<{ message: string }>(res).message, new RegExp(`lacks the "${scope}" scope`));
    }
    assert.equal((await stack().injectAs(reader, { method: 'GET', url: '/runs?limit=1' })).statusCode, 200);
    assert.equal((await stack().injectAs(runner, start)).statusCode, 202);
    const admin = await stack().createKey(uniqueId('admin'), ['admin']);
    for (const request of [{ method: 'GET' as const, url: '/runs?limit=1' }, { method: 'GET' as const, url: '/keys' }, start]) {
      assert.ok([200, 202].includes((await stack().injectAs(admin, request)).statusCode), `admin: ${request.url}`);
    }
  });

  it('keys: created once with their secret, listed and stored without it, revoked at once; each change is audited', async () => {
    const name = uniqueId('ci-deployer');
    const created = await stack().app.inject({ method: 'POST', url: '/keys', payload: { name, scopes: ['run', 'read', 'run'] } });
    assert.equal(created.statusCode, 201, created.body);
    const { id, key, scopes, createdBy } = json<KeyInfo & { key: string }>(created);
    assert.deepEqual(scopes, ['read', 'run']);
    assert.equal(createdBy, 'test-admin');
    const secret = key.split('_').slice(2).join('_');

    const listed = await stack().app.inject({ method: 'GET', url: '/keys' });
    assert.ok(json<{ keys: KeyInfo[] }>(listed).keys.some((k) => k.id === id && k.name === name));
    assert.ok(!listed.body.includes(secret), 'the list never shows a secret');
    const { rows } = await stack().pool.query<{ row: string; secret_hash: Buffer }>('SELECT to_jsonb(k)::text AS row, secret_hash FROM api_keys k WHERE id = $1', [id]);
    assert.ok(!rows[0]!.row.includes(secret), 'the database holds no secret');
    assert.deepEqual(rows[0]!.secret_hash, createHash('sha256').update(secret).digest());

    assert.equal((await stack().injectAs(key, { method: 'GET', url: '/runs?limit=1' })).statusCode, 200);
    let lastUsedAt: string | null = null;
    for (let i = 0; i < 50 && !lastUsedAt; i++) {
      lastUsedAt = json<{ keys: KeyInfo[] }>(await stack().app.inject({ method: 'GET', url: '/keys' })).keys.find((k) => k.id === id)!.lastUsedAt;
      if (!lastUsedAt) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(lastUsedAt, 'the list says when a key was last used');
    const revoked = await stack().app.inject({ method: 'DELETE', url: `/keys/${id}` });
    assert.equal(revoked.statusCode, 200);
    assert.ok(json<KeyInfo>(revoked).revokedAt);
    assert.equal((await stack().injectAs(key, { method: 'GET', url: '/runs?limit=1' })).statusCode, 401);
    assert.ok(!json<{ keys: KeyInfo[] }>(await stack().app.inject({ method: 'GET', url: '/keys' })).keys.some((k) => k.id === id), 'revoked keys are listed only on request');
    assert.ok(json<{ keys: KeyInfo[] }>(await stack().app.inject({ method: 'GET', url: '/keys?revoked=true' })).keys.some((k) => k.id === id));
    assert.equal((await stack().app.inject({ method: 'DELETE', url: '/keys/0123456789abcdef' })).statusCode, 404);

    const audit = json<{ entries: AuditEntry[] }>(await stack().app.inject({ method: 'GET', url: '/audit?actor=test-admin&limit=1000' })).entries.filter((e) => e.details?.keyId === id);
    assert.deepEqual(
      audit.map((e) => [e.action, e.details?.name]),
      [['key.revoke', name], ['key.create', name]],
    );

    for (const [payload, field] of [[{ name: 'has space', scopes: ['read'] }, 'name'], [{ name: 'x', scopes: ['superuser'] }, 'scopes.0'], [{ name: 'x', scopes: [] }, 'scopes'], [{ name: 'x', scopes: ['read'], scope: 'x' }, 'scope']] as const) {
      const res = await stack().app.inject({ method: 'POST', url: '/keys', payload });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(json<{ field: string }>(res).field, field);
    }
  });

  it('records who started a run: GET /runs/:id, the list, its filter and the search attribute', async () => {
    const name = uniqueId('alice');
    const alice = await stack().createKey(name, ['read', 'run']);
    const runId = uniqueId('started-by');
    const res = await stack().injectAs(alice, { method: 'POST', url: '/runs', payload: { kind: 'cleanup', runId, params: { dryRun: true } } });
    assert.equal(res.statusCode, 202, res.body);
    const run = await waitForRun(stack(), runId);
    assert.equal(run.startedBy, name);
    // The same runId again, by another key, is still alice's run.
    assert.equal((await stack().app.inject({ method: 'POST', url: '/runs', payload: { kind: 'cleanup', runId, params: { dryRun: true } } })).statusCode, 200);
    assert.equal((await waitForRun(stack(), runId)).startedBy, name);

    const description = await stack().client.workflow.getHandle(runId).describe();
    assert.equal(description.memo?.startedBy, name);
    assert.equal(description.typedSearchAttributes.get(searchAttributes.startedBy), name);
    // Visibility is eventually consistent: the list catches up within moments.
    let listed: { runs: { runId: string; startedBy?: string }[] } = { runs: [] };
    for (let i = 0; i < 50 && listed.runs.length === 0; i++) {
      listed = json(await stack().app.inject({ method: 'GET', url: `/runs?startedBy=${name}` }));
      if (listed.runs.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(listed.runs.map((r) => [r.runId, r.startedBy]), [[runId, name]]);
    const viaTemporal = [];
    for await (const w of stack().client.workflow.list({ query: `BatchflowStartedBy = '${name}'` })) viaTemporal.push(w.workflowId);
    assert.deepEqual(viaTemporal, [runId], 'the Web UI can filter by it');

    const audit = json<{ entries: AuditEntry[] }>(await stack().app.inject({ method: 'GET', url: `/audit?runId=${runId}`, headers: { 'user-agent': 'audit-reader' } })).entries;
    assert.equal(audit.length, 1, 'the second start returned the existing run: not a new action');
    assert.equal(audit[0]!.action, 'start');
    assert.equal(audit[0]!.actor, name);
    assert.deepEqual(audit[0]!.details, { kind: 'cleanup' });
    assert.equal(audit[0]!.ip, '127.0.0.1');
    assert.equal(audit[0]!.userAgent, 'lightMyRequest');
  });

  it('the audit log pages newest first and filters by action; its query is checked', async () => {
    const runIds = [uniqueId('audited'), uniqueId('audited'), uniqueId('audited')];
    for (const runId of runIds) assert.equal((await stack().app.inject({ method: 'POST', url: '/runs', payload: { kind: 'cleanup', runId, params: { dryRun: true } } })).statusCode, 202);
    const seen: string[] = [];
    let url: string | null = '/audit?action=start&limit=1';
    while (url && seen.length < 3) {
      const page: { entries: AuditEntry[]; next: string | null } = json(await stack().app.inject({ method: 'GET', url }));
      seen.push(...page.entries.map((e) => e.runId!));
      assert.ok(page.entries.every((e) => e.action === 'start'));
      url = page.next;
    }
    assert.deepEqual(seen, [...runIds].reverse());

    // A cancel is audited with its reason.
    const waiting = uniqueId('audited-cancel');
    assert.equal((await stack().app.inject({ method: 'POST', url: '/runs', payload: { kind: 'cleanup', runId: waiting, params: { requiresConfirmation: true } } })).statusCode, 202);
    await waitForRun(stack(), waiting, (r) => r.progress?.step === 'awaiting_approval');
    assert.equal((await stack().app.inject({ method: 'POST', url: `/runs/${waiting}/cancel`, payload: { reason: 'wrong day' } })).statusCode, 202);
    assert.equal((await waitForRun(stack(), waiting)).status, 'cancelled');
    const cancelled = json<{ entries: AuditEntry[] }>(await stack().app.inject({ method: 'GET', url: `/audit?runId=${waiting}&action=cancel` })).entries;
    assert.deepEqual(cancelled.map((e) => [e.actor, e.details]), [['test-admin', { reason: 'wrong day' }]]);
    for (const [query, field] of [['action=drop', 'action'], ['actor=%27%20OR%201%3D1', 'actor'], ['before=abc', 'before'], ['runid=x', 'runid']]) {
      const res = await stack().app.inject({ method: 'GET', url: `/audit?${query}` });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(json<{ field: string }>(res).field, field);
    }
  });
});

describe('four eyes', () => {
  let stack: Stack;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  before(async () => {
    stack = await openStack(testConfig({ BATCHFLOW_ALLOW_SELF_APPROVAL: 'false' }));
    worker = await startWorker(stack.config);
  });
  after(async () => {
    await worker.stop();
    await stack.close();
  });

  it('whoever started a run may not approve it; another key may, and the result says who, when and why', async () => {
    const p = uniqueId('eyes');
    await seedUsers(stack.pool, p, 5, { status: 'active' });
    const requester = uniqueId('requester');
    const alice = await stack.createKey(requester, ['read', 'run', 'approve']);
    // A second key of the same name is the same person.
    const aliceAgain = await stack.createKey(requester, ['approve']);
    const bobName = uniqueId('bob');
    const bob = await stack.createKey(bobName, ['approve']);
    const runId = uniqueId('four-eyes');
    const started = await stack.injectAs(alice, { method: 'POST', url: '/runs', payload: { kind: 'bulk-update', runId, params: { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, requiresConfirmation: true } } });
    assert.equal(started.statusCode, 202, started.body);
    await waitForRun(stack, runId, (r) => r.progress?.step === 'awaiting_approval');

    for (const key of [alice, aliceAgain]) {
      const self = await stack.injectAs(key, { method: 'POST', url: `/runs/${runId}/approve`, payload: { comment: 'mine' } });
      assert.equal(self.statusCode, 403, self.body);
      assert.equal(json<{ error: string }>(self).error, 'SELF_APPROVAL');
      assert.match(json<{ message: string }>(self).message, /was started by ".+", who may not approve it too: another key with the approve scope must \(four eyes; BATCHFLOW_ALLOW_SELF_APPROVAL=true allows it\)/);
    }
    const byInBody = await stack.injectAs(bob, { method: 'POST', url: `/runs/${runId}/approve`, payload: { by: 'someone-else' } });
    assert.equal(byInBody.statusCode, 400, 'the approver comes from the key, never the body');
    assert.equal(json<{ field: string }>(byInBody).field, 'by');
    assert.deepEqual(await statusCounts(stack.pool, p), { active: 5 });

    const approved = await stack.injectAs(bob, { method: 'POST', url: `/runs/${runId}/approve`, payload: { comment: 'sample looks right' }, headers: { 'user-agent': 'bob-browser' } });
    assert.equal(approved.statusCode, 202, approved.body);
    const done = await waitForRun(stack, runId);
    assert.equal(done.status, 'success');
    assert.equal(done.startedBy, requester);
    const { at, ...approval } = done.result!.approval!;
    assert.deepEqual(approval, { decision: 'approved', by: bobName, comment: 'sample looks right' });
    assert.ok(Date.parse(at) >= Date.parse(done.result!.startedAt) && Date.parse(at) <= Date.parse(done.result!.endedAt), at);
    assert.deepEqual(await statusCounts(stack.pool, p), { inactive: 5 });

    const audit = json<{ entries: AuditEntry[] }>(await stack.app.inject({ method: 'GET', url: `/audit?runId=${runId}` })).entries;
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor, e.details, e.userAgent]),
      [
        ['approve', bobName, { comment: 'sample looks right' }, 'bob-browser'],
        ['start', requester, { kind: 'bulk-update' }, 'lightMyRequest'],
      ],
      'refused approvals change nothing and are not actions',
    );
  });

  it('the requester may reject their own run; a pipeline step counts as started by whoever started the pipeline', async () => {
    const p = uniqueId('eyes-pipe');
    await seedUsers(stack.pool, p, 3, { status: 'active' });
    const carolName = uniqueId('carol');
    const carol = await stack.createKey(carolName, ['read', 'run', 'approve']);
    const runId = uniqueId('eyes-pipeline');
    const step = { dataset: 'users', where: ownUsers(p), set: { status: 'pending' }, requiresConfirmation: true };
    const started = await stack.injectAs(carol, { method: 'POST', url: '/runs', payload: { kind: 'pipeline', runId, params: { steps: [{ name: 'hold', kind: 'bulk-update', params: step }] } } });
    assert.equal(started.statusCode, 202, started.body);
    const child = `${runId}.hold`;
    await waitForChild(stack, child);
    const childRun = await waitForRun(stack, child, (r) => r.progress?.step === 'awaiting_approval');
    assert.equal(childRun.startedBy, carolName);
    assert.equal((await stack.client.workflow.getHandle(child).describe()).typedSearchAttributes.get(searchAttributes.startedBy), childRun.startedBy);
    assert.equal((await stack.injectAs(carol, { method: 'POST', url: `/runs/${child}/approve` })).statusCode, 403);
    const rejected = await stack.injectAs(carol, { method: 'POST', url: `/runs/${child}/reject`, payload: { reason: 'changed my mind' } });
    assert.equal(rejected.statusCode, 202, rejected.body);
    const done = await waitForRun(stack, child);
    assert.equal(done.status, 'cancelled');
    assert.equal(done.result!.approval!.decision, 'rejected');
    assert.equal(done.result!.approval!.by, childRun.startedBy);
    assert.equal(done.result!.approval!.comment, 'changed my mind');
    assert.deepEqual(await statusCounts(stack.pool, p), { active: 3 });
    const audit = json<{ entries: AuditEntry[] }>(await stack.app.inject({ method: 'GET', url: `/audit?runId=${child}` })).entries;
    assert.deepEqual(audit.map((e) => [e.action, e.actor, e.details]), [['reject', carolName, { reason: 'changed my mind' }]]);
  });
});

/** Waits until a pipeline has started a step's child run. */
async function waitForChild(stack: Stack, runId: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const res = await stack.app.inject({ method: 'GET', url: `/runs/${runId}` });
    if (res.statusCode === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${runId} never started`);
}

describe('rate limit', () => {
  let stack: Stack;
  before(async () => {
    stack = await openStack(testConfig({ BATCHFLOW_RATE_LIMIT: '3' }));
  });
  after(() => stack.close());

  it('counts per key: past the limit a 429 with Retry-After; another key still gets through', async () => {
    const key = await stack.createKey(uniqueId('busy'), ['read']);
    const other = await stack.createKey(uniqueId('calm'), ['read']);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await stack.injectAs(key, { method: 'GET', url: '/runs?limit=1' })).statusCode);
    assert.deepEqual(statuses, [200, 200, 200]);
    const limited = await stack.injectAs(key, { method: 'GET', url: '/runs?limit=1' });
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers['retry-after']) > 0, JSON.stringify(limited.headers));
    assert.equal(json<{ error: string }>(limited).error, 'RATE_LIMITED');
    assert.match(json<{ message: string }>(limited).message, /more than 3 requests a minute with this key; retry in/);
    assert.equal((await stack.injectAs(other, { method: 'GET', url: '/runs?limit=1' })).statusCode, 200);
  });

  it('public routes count per client address', async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await stack.injectAs(null, { method: 'GET', url: '/openapi.json', remoteAddress: '10.9.8.7' })).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    assert.equal((await stack.injectAs(null, { method: 'GET', url: '/openapi.json', remoteAddress: '10.9.8.6' })).statusCode, 200);
  });
});

