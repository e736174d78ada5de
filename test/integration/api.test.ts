import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { uniqueId, usersCsv, waitForRun, useStackWithWorker, writeFixture } from '../helpers/stack';

describe('HTTP API', () => {
  const fixture = useStackWithWorker();

  const post = (payload: unknown) => fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: payload as object });

  describe('bad requests get a 400 that names the field', () => {
    const cases: [string, unknown, string][] = [
      ['unknown kind', { kind: 'nope', params: {} }, 'kind'],
      ['missing params', { kind: 'import' }, 'params'],
      ['unknown dataset', { kind: 'import', params: { source: '/tmp/x.csv', dataset: 'nope' } }, 'params.dataset'],
      ['relative source', { kind: 'import', params: { source: 'x.csv', dataset: 'users' } }, 'params.source'],
      ['bad mode', { kind: 'import', params: { source: '/tmp/x.csv', dataset: 'users', mode: 'merge' } }, 'params.mode'],
      ['mapping to a missing column', { kind: 'import', params: { source: '/tmp/x.csv', dataset: 'users', mapping: { Mail: 'mail' } } }, 'params.mapping.Mail'],
      ['batch size out of range', { kind: 'import', params: { source: '/tmp/x.csv', dataset: 'users', batchSize: 0 } }, 'params.batchSize'],
      ['bad run id', { kind: 'import', runId: 'has spaces', params: { source: '/tmp/x.csv', dataset: 'users' } }, 'runId'],
    ];
    for (const [name, body, field] of cases) {
      it(name, async () => {
        const res = await post(body);
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json<{ field: string }>().field, field);
        assert.match(res.json<{ message: string }>().message, new RegExp(`^${field.replace(/\./g, '\\.')}: `));
      });
    }

    it('malformed JSON', async () => {
      const res = await fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: '{"kind": ', headers: { 'content-type': 'application/json' } });
      assert.equal(res.statusCode, 400);
    });

    it('bad query parameters', async () => {
      const res = await fixture.stack.app.inject({ method: 'GET', url: '/runs/some-run/errors?limit=abc' });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json<{ field: string }>().field, 'limit');
    });
  });

  it('unknown runs are 404, on every route', async () => {
    for (const [method, url] of [['GET', '/runs/no-such-run'], ['GET', '/runs/no-such-run/errors'], ['POST', '/runs/no-such-run/cancel']] as const) {
      const res = await fixture.stack.app.inject({ method, url });
      assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
    }
  });

  it('starting the same runId twice returns the same run; other params are a 409', async () => {
    const p = uniqueId('idem');
    const file = await writeFixture('idem.csv', usersCsv(p, 5));
    const runId = uniqueId('idem-run');
    const body = { kind: 'import', runId, params: { source: file, dataset: 'users' } };
    const first = await post(body);
    assert.equal(first.statusCode, 202);
    assert.deepEqual(first.json(), { runId, existing: false });
    const second = await post(body);
    assert.equal(second.statusCode, 200);
    assert.deepEqual(second.json(), { runId, existing: true });
    const conflict = await post({ ...body, params: { ...body.params, mode: 'insert' } });
    assert.equal(conflict.statusCode, 409);

    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success');
    assert.equal(run.result!.counts.succeeded, 5);
    const after = await post(body);
    assert.deepEqual([after.statusCode, after.json<{ existing: boolean }>().existing], [200, true], 'still the same run once finished');

    const listed = await fixture.stack.app.inject({ method: 'GET', url: '/runs?kind=import&limit=500' });
    assert.equal(listed.statusCode, 200);
  });

  it('pages through row errors', async () => {
    const lines = ['email,name', ...Array.from({ length: 25 }, (_, i) => `bad-${i},Name`)];
    const runId = uniqueId('paging');
    await post({ kind: 'import', runId, params: { source: await writeFixture('paging.csv', lines.join('\n')), dataset: 'users' } });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.result!.errorCount, 25);
    const seen: number[] = [];
    let url: string | null = `/runs/${runId}/errors?limit=10`;
    while (url) {
      const page: { errors: { row: number }[]; next: string | null } = (await fixture.stack.app.inject({ method: 'GET', url })).json();
      seen.push(...page.errors.map((e) => e.row));
      url = page.next;
    }
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('health reports its dependencies', async () => {
    const res = await fixture.stack.app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok', temporal: 'ok', database: 'ok' });
  });
});
