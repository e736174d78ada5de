import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { createRegistry } from '../../src/datasets';
import { aggregateParamsSchema, checkAggregateParams } from '../../src/jobs/aggregate';
import { assertRollupsMatchDatasets, checkRollup, defineRollup, type Measure } from '../../src/rollups';
import { reportCsv, reportHtml, summarise, type ReportFacts, type RunFact } from '../../src/reports/weekly-report';
import { shipped } from '../helpers/datasets';

const run = (runId: string, kind: string, status: string, durationMs: number | undefined, processed = 0, rejected = 0, errorCode?: string): RunFact => ({
  runId,
  kind,
  status,
  startTime: '2026-11-23T10:00:00.000Z',
  ...(durationMs !== undefined && { closeTime: new Date(Date.parse('2026-11-23T10:00:00.000Z') + durationMs).toISOString(), durationMs }),
  processed,
  rejected,
  ...(errorCode && { errorCode }),
});

const facts: ReportFacts = {
  window: { from: '2026-11-22', to: '2026-11-28' },
  generatedAt: '2026-11-29T03:00:05.000Z',
  runs: [
    run('imp-1', 'import', 'success', 4_000, 100, 0),
    run('imp-2', 'import', 'partial', 9_000, 50, 5),
    run('imp-3', 'import', 'failed', 1_000, 10, 10, 'TOO_MANY_ERRORS'),
    run('agg-1', 'aggregate', 'success', 2_000, 1, 0),
    run('cl-1', 'cleanup', 'running', undefined),
  ],
  rowErrors: [
    { code: 'VALIDATION_FAILED', rows: 14 },
    { code: 'DUPLICATE_KEY', rows: 1 },
  ],
  dailyStats: { columns: ['total_users', 'posts'], rows: [{ date: '2026-11-22', total_users: 10, posts: 3 }] },
};

describe('weekly report', () => {
  it('sums runs by kind and status, rows by kind, error codes and the slowest runs', () => {
    const s = summarise(facts);
    assert.deepEqual(s.byKindStatus, [
      { kind: 'aggregate', status: 'success', runs: 1 },
      { kind: 'cleanup', status: 'running', runs: 1 },
      { kind: 'import', status: 'failed', runs: 1 },
      { kind: 'import', status: 'partial', runs: 1 },
      { kind: 'import', status: 'success', runs: 1 },
    ]);
    assert.deepEqual(s.rows.find((r) => r.kind === 'import'), { kind: 'import', processed: 160, rejected: 15 });
    assert.deepEqual(s.totals, { runs: 5, processed: 161, rejected: 15 });
    assert.deepEqual(s.topErrors, [
      { code: 'VALIDATION_FAILED', rejectedRows: 14, failedRuns: 0 },
      { code: 'DUPLICATE_KEY', rejectedRows: 1, failedRuns: 0 },
      { code: 'TOO_MANY_ERRORS', rejectedRows: 0, failedRuns: 1 },
    ]);
    assert.deepEqual(s.slowest.map((r) => r.runId), ['imp-2', 'imp-1', 'agg-1', 'imp-3'], 'running runs have no duration yet');
  });

  it('writes a long CSV: section, item, metric, value', () => {
    const rows = parse<{ section: string; item: string; metric: string; value: string }>(reportCsv(facts), { columns: true });
    const value = (section: string, item: string, metric: string) => rows.find((r) => r.section === section && r.item === item && r.metric === metric)?.value;
    assert.equal(value('runs', 'import/partial', 'runs'), '1');
    assert.equal(value('rows', 'import', 'rejected'), '15');
    assert.equal(value('error_codes', 'TOO_MANY_ERRORS', 'failed_runs'), '1');
    assert.equal(value('slowest_runs', 'imp-2', 'duration_ms'), '9000');
    assert.equal(value('daily_stats', '2026-11-22', 'posts'), '3');
    assert.equal(value('window', 'from', 'date'), '2026-11-22');
  });

  it('writes an HTML page with every section, its text escaped', () => {
    const html = reportHtml(facts);
    for (const heading of ['Runs by kind and status', 'Rows processed and rejected', 'Top error codes', 'Slowest runs', 'Daily stats']) assert.ok(html.includes(`<h2>${heading}</h2>`), heading);
    const odd = reportHtml({ ...facts, runs: [run('x<b>', 'import', 'success', 1)] });
    assert.ok(odd.includes('x&#60;b&#62;') && !odd.includes('x<b>'));
    assert.ok(html.includes('5 runs · 161 rows processed · 15 rejected'));
  });
});

describe('roll-up declarations', () => {
  const rollup = (measure: Measure) => defineRollup({ name: 'x', table: 'x', dateColumn: 'date', timeZone: 'UTC', description: '', measures: { n: measure } });

  it('are held against the declared datasets: a column they do not declare, or of the wrong type, or an undeclared dataset', () => {
    assert.deepEqual(checkRollup(rollup({ dataset: 'posts', at: 'posted', window: 'day', description: '' }), shipped), ['roll-up x: measure n: posted is not a timestamptz column of posts']);
    assert.match(checkRollup(rollup({ dataset: 'users', at: 'created_at', deletedAt: 'name', window: 'day', description: '' }), shipped).join(), /name is not a timestamptz column of users/);
    assert.match(checkRollup(rollup({ dataset: 'nope', at: 'created_at', window: 'day', description: '' }), shipped).join(), /measure n: "nope" is not a declared dataset/);
  });

  it("the shipped daily_stats fits the shipped datasets; without posts, the worker's start check and an aggregate's check refuse it", () => {
    assert.doesNotThrow(() => assertRollupsMatchDatasets(shipped));
    const withoutPosts = createRegistry(shipped.all().filter((d) => d.name !== 'posts').map((dataset) => ({ dataset, source: 'test' })));
    assert.throws(() => assertRollupsMatchDatasets(withoutPosts), /roll-up daily_stats: measure posts: "posts" is not a declared dataset/);
    assert.deepEqual(
      checkAggregateParams(aggregateParamsSchema.parse({}), withoutPosts).map((i) => i.path.join('.')),
      ['rollups.0'],
    );
  });
});
