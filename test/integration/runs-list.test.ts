import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TypedSearchAttributes } from '@temporalio/common';
import { searchAttributes } from '../../src/jobs';
import type { RunListItem } from '../../src/jobs/run';
import { ownUsers, runCli, seedUsers, startRun, uniqueId, usersCsv, useStackWithWorker, waitForRun, writeFixture, type Stack } from '../helpers/stack';

interface Page {
  runs: RunListItem[];
  nextPageToken: string | null;
}

async function page(stack: Stack, query: Record<string, string>): Promise<Page> {
  const res = await stack.app.inject({ method: 'GET', url: `/runs?${new URLSearchParams(query).toString()}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Page>();
}

/** Every run a query lists, page by page. */
async function allPages(stack: Stack, query: Record<string, string>): Promise<{ runs: RunListItem[]; pages: number }> {
  const runs: RunListItem[] = [];
  let pages = 0;
  for (let token: string | null = null; ; ) {
    const p = await page(stack, { ...query, ...(token && { pageToken: token }) });
    runs.push(...p.runs);
    pages += 1;
    token = p.nextPageToken;
    if (!token) return { runs, pages };
  }
}

/** Visibility is eventually consistent: wait until it lists these runs, ended, before paging. */
async function untilListed(stack: Stack, query: Record<string, string>, runIds: string[]): Promise<void> {
  for (let i = 0; ; i++) {
    const { runs } = await allPages(stack, { ...query, limit: '1000' });
    const closed = new Set(runs.filter((r) => r.closeTime).map((r) => r.runId));
    if (runIds.every((id) => closed.has(id))) return;
    if (i > 150) throw new Error(`visibility did not list ${runIds.filter((id) => !closed.has(id)).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('GET /runs: pages and filters', () => {
  const fixture = useStackWithWorker();

  it('pages return every run exactly once; filters by time, kind, dataset, status and who started it', async () => {
    const { stack } = fixture;
    const from = new Date().toISOString();
    const p = uniqueId('list');
    const imports = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => startRun(stack, 'import', { source: await writeFixture(`list-${i}.csv`, usersCsv(`${p}-${i}`, 2)), dataset: 'users' })),
    );
    await seedUsers(stack.pool, p, 3);
    const dryRuns = await Promise.all([1, 2].map(() => startRun(stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, dryRun: true })));
    // A run started by someone else's client, with who started it (the API sets it once runs record their caller).
    const byDana = uniqueId('dana');
    await stack.client.workflow.start('importWorkflow', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: byDana,
      args: [{ params: { source: await writeFixture('dana.csv', usersCsv(`${p}-dana`, 1)), dataset: 'users' } }],
      typedSearchAttributes: new TypedSearchAttributes([
        { key: searchAttributes.kind, value: 'import' },
        { key: searchAttributes.dataset, value: 'users' },
        { key: searchAttributes.status, value: 'running' },
        { key: searchAttributes.startedBy, value: 'dana' },
      ]),
    });
    const all = [...imports, ...dryRuns, byDana];
    for (const runId of all) assert.notEqual((await waitForRun(stack, runId)).status, 'running');
    const window = { from, to: new Date().toISOString() };
    await untilListed(stack, window, all);

    const paged = await allPages(stack, { ...window, limit: '3' });
    assert.equal(paged.pages, 3, 'eight runs in pages of three');
    assert.deepEqual(paged.runs.map((r) => r.runId).sort(), [...all].sort(), 'each run once, none missing');

    const ofKind = await allPages(stack, { ...window, kind: 'bulk-update', dataset: 'users', status: 'success', limit: '1' });
    assert.deepEqual(ofKind.runs.map((r) => r.runId).sort(), [...dryRuns].sort());
    assert.ok(ofKind.runs.every((r) => r.kind === 'bulk-update' && r.dataset === 'users' && r.status === 'success' && r.closeTime !== null));

    const dana = await allPages(stack, { ...window, startedBy: 'dana' });
    assert.deepEqual(dana.runs.map((r) => [r.runId, r.startedBy]), [[byDana, 'dana']]);

    const before = await page(stack, { to: from, kind: 'import', limit: '1000' });
    assert.ok(before.runs.every((r) => !all.includes(r.runId)), 'runs started after `to` are not listed');

    // batchflow runs follows the pages.
    const apiUrl = await stack.app.listen({ port: 0, host: '127.0.0.1' });
    const cli = await runCli(apiUrl, ['runs', '--from', window.from, '--to', window.to, '--page-size', '2', '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.trim().split('\n').map((l) => JSON.parse(l) as RunListItem);
    assert.deepEqual(lines.map((r) => r.runId).sort(), [...all].sort());
    const table = await runCli(apiUrl, ['runs', '--from', window.from, '--to', window.to, '--kind', 'bulk-update', '--page-size', '1']);
    assert.match(table.stdout, /^run\s+kind\s+dataset\s+status\s+started\s+ended$/m);
    assert.equal(table.stdout.trim().split('\n').length, 3, table.stdout);
    assert.match(table.stderr, /2 run\(s\)/);
  });

  it('a page token that is not one, or belongs to another filter, is a 400 naming it', async () => {
    const { stack } = fixture;
    const first = await page(stack, { limit: '1' });
    assert.ok(first.nextPageToken, 'more than one run listed');
    for (const query of [{ pageToken: 'bm90LWEtdG9rZW4' }, { pageToken: first.nextPageToken, kind: 'cleanup' }] as Record<string, string>[]) {
      const res = await stack.app.inject({ method: 'GET', url: `/runs?${new URLSearchParams(query).toString()}` });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json<{ field: string }>().field, 'pageToken');
    }
    assert.equal((await page(stack, { limit: '1', pageToken: first.nextPageToken })).runs.length, 1, 'with its own filter the token works');
  });
});
