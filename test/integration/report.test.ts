import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { addDays, dateIn } from '../../src/jobs/dates';
import type { RunListItem, RunOutput } from '../../src/jobs/run';
import { statsRows } from '../helpers/rollups';
import { eventually } from '../helpers/schedules';
import { download, historyText, startRun, uniqueId, usersCsv, useStackWithWorker, waitForRun, writeFixture } from '../helpers/stack';

type CsvRow = { section: string; item: string; metric: string; value: string };

describe('report', () => {
  const fixture = useStackWithWorker();
  const stack = () => fixture.stack;

  /** A report's file as GET /runs/:id/download serves it, checked against what the result says of it. */
  const read = async (runId: string, output: RunOutput): Promise<string> => {
    const file = await download(stack(), runId, new URL(output.download, 'http://api').search);
    assert.equal(file.status, 200);
    assert.equal(createHash('sha256').update(file.body).digest('hex'), output.sha256);
    assert.equal(file.body.length, output.bytes);
    return file.body.toString('utf8');
  };

  it("writes CSV and HTML whose figures match the runs of this task queue, and keeps rows' values out", async () => {
    const p = uniqueId('report');
    const marker = `MARKER-${p}`;
    const good = await writeFixture('good.csv', usersCsv(`${p}-ok`, 5));
    const bad = await writeFixture('bad.csv', `email,name\n${p}.1@example.com,One\nnot-an-email,${marker}\n${p}.2@example.com,Two\n${marker},Three\n${p}.3@example.com,Four\n`);
    const ids = {
      success: await startRun(stack(), 'import', { source: good, dataset: 'users' }),
      partial: await startRun(stack(), 'import', { source: bad, dataset: 'users' }),
      failed: await startRun(stack(), 'import', { source: bad, dataset: 'users', errorHandling: 'stop_on_error' }),
      aggregate: await startRun(stack(), 'aggregate', { date: '1993-01-01' }),
    };
    const results = Object.fromEntries(await Promise.all(Object.entries(ids).map(async ([k, id]) => [k, await waitForRun(stack(), id)] as const)));
    assert.deepEqual(Object.values(results).map((r) => r.status), ['success', 'partial', 'failed', 'success']);
    // Visibility records each run's final status a moment after it ends.
    const listed = await eventually('the runs listed with their final status', async () => {
      const res = await stack().app.inject({ method: 'GET', url: '/runs?limit=500' });
      const runs = res.json<{ runs: RunListItem[] }>().runs.filter((r) => Object.values(ids).includes(r.runId));
      return runs.length === 4 && runs.every((r) => r.status !== 'running' && r.closeTime) ? runs : undefined;
    });

    const today = dateIn(new Date(), 'UTC');
    const window = { from: addDays(today, -1), to: today };
    const reportId = await startRun(stack(), 'report', window);
    const report = await waitForRun(stack(), reportId);
    assert.equal(report.status, 'success', JSON.stringify(report.error ?? report.result?.error));
    const outputs = report.result!.outputs;
    assert.deepEqual(outputs.map((o) => o.location.replace(/^.*\./, '')), ['csv', 'html']);
    assert.deepEqual(outputs.map((o) => o.contentType), ['text/csv; charset=utf-8', 'text/html; charset=utf-8']);
    assert.ok(outputs.every((o) => o.location.startsWith(`store://reports/${reportId}/`)), outputs.map((o) => o.location).join(', '));
    assert.equal(report.result!.counts.processed, 4, 'it covers the four runs');

    const csv = await read(reportId, outputs[0]!);
    const rows = parse<CsvRow>(csv, { columns: true });
    const section = (name: string) => Object.fromEntries(rows.filter((r) => r.section === name).map((r) => [`${r.item} ${r.metric}`, r.value]));
    assert.deepEqual(section('runs'), { 'aggregate/success runs': '1', 'import/failed runs': '1', 'import/partial runs': '1', 'import/success runs': '1' });

    const imports = [results.success!, results.partial!, results.failed!];
    const sum = (f: (c: { processed: number; failed: number }) => number) => String(imports.reduce((n, r) => n + f(r.result!.counts), 0));
    assert.deepEqual(section('rows'), { 'aggregate processed': '1', 'aggregate rejected': '0', 'import processed': sum((c) => c.processed), 'import rejected': sum((c) => c.failed) });

    const { rows: codes } = await stack().pool.query<{ code: string; n: number }>(
      'SELECT code, count(*)::int AS n FROM run_errors JOIN run_executions USING (execution_id) WHERE workflow_id = ANY($1) GROUP BY code',
      [Object.values(ids)],
    );
    const errors = section('error_codes');
    for (const { code, n } of codes) assert.equal(errors[`${code} rejected_rows`], String(n), code);
    assert.equal(errors['STOPPED_ON_ERROR failed_runs'], '1');

    const slowest = section('slowest_runs');
    for (const run of listed) assert.equal(slowest[`${run.runId} duration_ms`], String(Date.parse(run.closeTime!) - Date.parse(run.startTime)), run.runId);

    const stats = await statsRows(stack().pool, window.from, window.to);
    assert.deepEqual(
      rows.filter((r) => r.section === 'daily_stats' && r.metric === 'total_users').map((r) => [r.item, r.value]),
      stats.map((s) => [s.date, String(s.total_users)]),
    );

    const html = await read(reportId, outputs[1]!);
    for (const heading of ['Runs by kind and status', 'Top error codes', 'Slowest runs', 'Daily stats']) assert.ok(html.includes(heading), heading);
    for (const id of Object.values(ids)) assert.ok(html.includes(id), id);

    assert.ok(!csv.includes(marker) && !html.includes(marker), "no rejected row's value in the report");
    assert.ok(!(await historyText(stack().client, reportId)).includes(marker), 'nor in its history');
  });
});
