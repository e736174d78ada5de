import { stringify } from 'csv-stringify/sync';
import type { DateRange } from '../jobs/dates';

/** One run the report covers, from Temporal's visibility and the run's committed checkpoint. */
export interface RunFact {
  runId: string;
  kind: string;
  status: string;
  scheduleId?: string;
  startTime: string;
  closeTime?: string;
  durationMs?: number;
  /** Rows processed and rejected (the committed counts; runs without batches have none). */
  processed: number;
  rejected: number;
  /** Why a failed run failed. */
  errorCode?: string;
}

/** What a report is made of: pure data, rendered as CSV and HTML below. */
export interface ReportFacts {
  window: DateRange;
  generatedAt: string;
  runs: RunFact[];
  /** Rejected rows by error code, over the runs covered. */
  rowErrors: { code: string; rows: number }[];
  dailyStats: { columns: string[]; rows: Record<string, unknown>[] };
}

const TOP = 10;

/** The figures a report shows, worked out from its facts. */
export function summarise(facts: ReportFacts) {
  const count = <K extends string>(keyOf: (r: RunFact) => K) => {
    const m = new Map<K, RunFact[]>();
    for (const r of facts.runs) m.set(keyOf(r), [...(m.get(keyOf(r)) ?? []), r]);
    return [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
  };
  const byKindStatus = count((r) => `${r.kind}\u0000${r.status}`).map(([key, runs]) => {
    const [kind, status] = key.split('\u0000') as [string, string];
    return { kind, status, runs: runs.length };
  });
  const rows = count((r) => r.kind).map(([kind, runs]) => ({
    kind,
    processed: runs.reduce((n, r) => n + r.processed, 0),
    rejected: runs.reduce((n, r) => n + r.rejected, 0),
  }));
  const codes = new Map<string, { code: string; rejectedRows: number; failedRuns: number }>();
  const codeEntry = (code: string) => codes.get(code) ?? codes.set(code, { code, rejectedRows: 0, failedRuns: 0 }).get(code)!;
  for (const e of facts.rowErrors) codeEntry(e.code).rejectedRows += e.rows;
  for (const r of facts.runs) if (r.errorCode) codeEntry(r.errorCode).failedRuns += 1;
  const topErrors = [...codes.values()].sort((a, b) => b.rejectedRows + b.failedRuns - (a.rejectedRows + a.failedRuns) || a.code.localeCompare(b.code)).slice(0, TOP);
  const slowest = facts.runs
    .filter((r) => r.durationMs !== undefined)
    .sort((a, b) => b.durationMs! - a.durationMs! || a.runId.localeCompare(b.runId))
    .slice(0, TOP);
  return {
    byKindStatus,
    rows,
    totals: { runs: facts.runs.length, processed: rows.reduce((n, r) => n + r.processed, 0), rejected: rows.reduce((n, r) => n + r.rejected, 0) },
    topErrors,
    slowest,
  };
}

/** The report as one long CSV: `section,item,metric,value`, easy to load into a sheet or a query. */
export function reportCsv(facts: ReportFacts): string {
  const s = summarise(facts);
  const lines: (string | number)[][] = [
    ['section', 'item', 'metric', 'value'],
    ['window', 'from', 'date', facts.window.from],
    ['window', 'to', 'date', facts.window.to],
    ['totals', 'all', 'runs', s.totals.runs],
    ['totals', 'all', 'rows_processed', s.totals.processed],
    ['totals', 'all', 'rows_rejected', s.totals.rejected],
    ...s.byKindStatus.map((r) => ['runs', `${r.kind}/${r.status}`, 'runs', r.runs]),
    ...s.rows.flatMap((r) => [
      ['rows', r.kind, 'processed', r.processed],
      ['rows', r.kind, 'rejected', r.rejected],
    ]),
    ...s.topErrors.flatMap((e) => [
      ['error_codes', e.code, 'rejected_rows', e.rejectedRows],
      ['error_codes', e.code, 'failed_runs', e.failedRuns],
    ]),
    ...s.slowest.flatMap((r) => [
      ['slowest_runs', r.runId, 'duration_ms', r.durationMs!],
      ['slowest_runs', r.runId, 'kind', r.kind],
      ['slowest_runs', r.runId, 'status', r.status],
    ]),
    ...facts.dailyStats.rows.flatMap((row) => facts.dailyStats.columns.map((c) => ['daily_stats', String(row.date), c, String(row[c])])),
  ];
  // Values that look like formulas are quoted by the sheet as text: run ids and codes are ours, but a run id is a caller's string.
  return stringify(lines.map((l) => l.map((v) => (typeof v === 'string' && /^[=+\-@]/.test(v) ? `'${v}` : v))));
}

const escape = (v: unknown) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const table = (head: string[], rows: unknown[][], empty: string) =>
  rows.length === 0
    ? `<p class="empty">${escape(empty)}</p>`
    : `<table><thead><tr>${head.map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead><tbody>${rows
        .map((r) => `<tr>${r.map((v) => `<td${typeof v === 'number' ? ' class="n"' : ''}>${escape(v)}</td>`).join('')}</tr>`)
        .join('')}</tbody></table>`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The report as a page a person reads: one table per section. */
export function reportHtml(facts: ReportFacts): string {
  const s = summarise(facts);
  const title = `Batchflow report, ${facts.window.from} to ${facts.window.to}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.empty{color:#777}.meta{color:#555}
</style></head><body>
<h1>${escape(title)}</h1>
<p class="meta">${s.totals.runs} runs · ${s.totals.processed} rows processed · ${s.totals.rejected} rejected · generated ${escape(facts.generatedAt)}</p>
<h2>Runs by kind and status</h2>
${table(['kind', 'status', 'runs'], s.byKindStatus.map((r) => [r.kind, r.status, r.runs]), 'No runs started in these days.')}
<h2>Rows processed and rejected</h2>
${table(['kind', 'processed', 'rejected'], s.rows.map((r) => [r.kind, r.processed, r.rejected]), 'No rows.')}
<h2>Top error codes</h2>
${table(['code', 'rejected rows', 'failed runs'], s.topErrors.map((e) => [e.code, e.rejectedRows, e.failedRuns]), 'No errors.')}
<h2>Slowest runs</h2>
${table(['run', 'kind', 'status', 'duration'], s.slowest.map((r) => [r.runId, r.kind, r.status, seconds(r.durationMs!)]), 'No finished runs.')}
<h2>Daily stats</h2>
${table(['date', ...facts.dailyStats.columns], facts.dailyStats.rows.map((row) => [String(row.date), ...facts.dailyStats.columns.map((c) => Number(row[c]))]), 'No daily_stats rows for these days.')}
</body></html>
`;
}
