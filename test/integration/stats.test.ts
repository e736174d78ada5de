import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunView } from '../../src/api/runs';
import type { Stats } from '../../src/stats';
import { historyText, ownUsers, runCli, seedUsers, startRun, uniqueId, usersCsv, useStackWithWorker, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/** The nearest-rank percentile: the smallest duration at least q of the runs did not exceed. */
const nearestRank = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.ceil(q * values.length) - 1]!;

async function stats(stack: Stack, from: Date, to: Date): Promise<Stats> {
  const res = await stack.app.inject({ method: 'GET', url: `/stats?from=${from.toISOString()}&to=${to.toISOString()}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Stats>();
}

/** Polls until visibility lists the run with the status (it lags a moment behind the run). */
async function listed(stack: Stack, runId: string, status: string): Promise<void> {
  for (let i = 0; ; i++) {
    const { runs } = (await stack.app.inject({ method: 'GET', url: `/runs?status=${status}&limit=1000` })).json<{ runs: { runId: string }[] }>();
    if (runs.some((r) => r.runId === runId)) return;
    if (i > 150) throw new Error(`${runId} never listed as ${status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('stats', () => {
  const fixture = useStackWithWorker();

  it('figures equal what the runs in the window did', async () => {
    const { stack } = fixture;
    const from = new Date();
    const p = uniqueId('st');
    const finished: Record<string, RunView> = {};
    const finish = async (kind: string, params: object) => {
      const runId = await startRun(stack, kind, params);
      finished[runId] = await waitForRun(stack, runId);
      return finished[runId];
    };

    // Imports: one clean, one with two rejected rows, one without a required column.
    const marker = `marker-${p}`;
    const okCsv = usersCsv(`${p}-ok`, 5).replace(/User (\d+)/g, `${marker} $1`);
    const ok = await finish('import', { source: await writeFixture('ok.csv', okCsv), dataset: 'users' });
    const partialCsv = usersCsv(`${p}-part`, 3) + `not-an-email,Bad One,user,active,2024-01-01\nalso-bad,Bad Two,user,active,2024-01-01\n`;
    const partial = await finish('import', { source: await writeFixture('partial.csv', partialCsv), dataset: 'users' });
    const failed = await finish('import', { source: await writeFixture('failed.csv', 'name\nNo Email\n'), dataset: 'users' });
    assert.deepEqual([ok.status, partial.status, failed.status, failed.error?.code], ['success', 'partial', 'failed', 'MISSING_COLUMNS']);
    assert.ok(!(await historyText(stack.client, ok.runId)).includes(marker), 'the figures a run records carry no rows');

    // Bulk updates: a dry run (changes nothing) and a real one over 7 rows.
    await seedUsers(stack.pool, `${p}-upd`, 7);
    const dry = await finish('bulk-update', { dataset: 'users', where: ownUsers(`${p}-upd`), set: { status: 'inactive' }, dryRun: true });
    const updated = await finish('bulk-update', { dataset: 'users', where: ownUsers(`${p}-upd`), set: { status: 'inactive' } });
    assert.deepEqual([dry.status, updated.status, updated.result!.counts.succeeded], ['success', 'success', 7]);

    // A cleanup over two datasets: 3 users and 4 products.
    await seedUsers(stack.pool, `${p}-del`, 3);
    await stack.pool.query(`INSERT INTO products (sku, name, price) SELECT $1 || g, 'Product ' || g, 9.5 FROM generate_series(1, 4) g`, [`${p}-sku-`]);
    const cleaned = await finish('cleanup', {
      rules: [
        { name: 'old_users', dataset: 'users', where: ownUsers(`${p}-del`) },
        { name: 'old_products', dataset: 'products', where: { field: 'sku', op: 'starts_with', value: `${p}-sku-` } },
      ],
    });
    assert.equal(cleaned.result!.counts.succeeded, 7);

    // One run left waiting for approval.
    const waiting = await startRun(stack, 'bulk-update', { dataset: 'users', where: ownUsers(`${p}-upd`), set: { status: 'pending' }, requiresConfirmation: true });
    await waitForRun(stack, waiting, (r) => r.progress?.step === 'awaiting_approval');
    await listed(stack, waiting, 'awaiting_approval');
    const to = new Date();

    const durations = (kind: string) => {
      const ms = Object.values(finished)
        .filter((r) => r.kind === kind)
        .map((r) => r.result!.durationMs);
      return { runs: ms.length, p50Ms: nearestRank(ms, 0.5), p95Ms: nearestRank(ms, 0.95) };
    };
    const figures = await stats(stack, from, to);
    const { runs: waitingRuns, ...awaiting } = figures.awaitingApproval;
    assert.deepEqual(
      { ...figures, awaitingApproval: { ...awaiting, runIds: waitingRuns.map((r) => r.runId) } },
      {
        from: from.toISOString(),
        to: to.toISOString(),
        runs: { total: 7, byKind: { import: { success: 1, partial: 1, failed: 1 }, 'bulk-update': { success: 2, awaiting_approval: 1 }, cleanup: { success: 1 } } },
        rows: {
          // 5 + 5 imported (2 rejected), 7 updated, 3 deleted; the failed import and the dry run wrote none.
          users: { processed: 20, succeeded: 18, rejected: 2, skipped: 0 },
          products: { processed: 4, succeeded: 4, rejected: 0, skipped: 0 },
        },
        topErrorCodes: [
          { code: 'VALIDATION_FAILED', runs: 1, rows: 2 },
          { code: 'MISSING_COLUMNS', runs: 1, rows: 0 },
        ],
        durations: { 'bulk-update': durations('bulk-update'), cleanup: durations('cleanup'), import: durations('import') },
        awaitingApproval: { count: 1, runIds: [waiting] },
      },
    );

    // Rejected, the waiting run ends cancelled: it counts as finished, with its reason.
    assert.equal((await stack.app.inject({ method: 'POST', url: `/runs/${waiting}/reject`, payload: { reason: 'not today' } })).statusCode, 202);
    assert.equal((await waitForRun(stack, waiting)).status, 'cancelled');
    const after = await stats(stack, from, to);
    assert.deepEqual(after.runs.byKind['bulk-update'], { success: 2, cancelled: 1 });
    assert.deepEqual(after.topErrorCodes.at(-1), { code: 'REJECTED', runs: 1, rows: 0 });
    assert.equal(after.awaitingApproval.count, 0);
    assert.equal(after.durations['bulk-update']!.runs, 3);

    // Runs other test files started just before `from` were not counted above; nor does a window without runs count any.
    const empty = await stats(stack, new Date('2000-01-01T00:00:00Z'), new Date('2000-01-02T00:00:00Z'));
    assert.deepEqual([empty.runs.total, empty.rows, empty.topErrorCodes, empty.durations], [0, {}, [], {}]);

    // batchflow stats shows the same.
    const apiUrl = await stack.app.listen({ port: 0, host: '127.0.0.1' });
    const window = ['--from', from.toISOString(), '--to', to.toISOString()];
    const json = await runCli(apiUrl, ['stats', ...window, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), after);
    const text = await runCli(apiUrl, ['stats', ...window]);
    assert.match(text.stdout, /^7 run\(s\) started from /m);
    assert.match(text.stdout, /^users\s+20\s+18\s+2\s+0$/m);
    assert.match(text.stdout, /^VALIDATION_FAILED\s+1\s+2$/m);
  });

  it('the window defaults to the last 24 hours; one that ends before it starts is a 400', async () => {
    const before = Date.now();
    const figures = (await fixture.stack.app.inject({ method: 'GET', url: '/stats' })).json<Stats>();
    const to = Date.parse(figures.to);
    assert.ok(to >= before && to <= Date.now(), figures.to);
    assert.equal(to - Date.parse(figures.from), 24 * 3600_000);

    const res = await fixture.stack.app.inject({ method: 'GET', url: '/stats?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json<{ field: string }>().field, 'from');
  });
});
