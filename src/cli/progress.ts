import { detailCounts, type Counts, type DetailCount, type Preview, type Progress, type RunResult, type StepState } from '../jobs/run';

const formatCount = (n: number) => n.toLocaleString('en-US');
const formatBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** One line of progress: a bar when the total is known, then counts, rate and ETA. */
export function progressLine(p: Progress, width = 24): string {
  const fraction = p.bytesTotal ? (p.bytesRead ?? 0) / p.bytesTotal : p.counts.total ? p.counts.processed / p.counts.total : undefined;
  const bar = fraction === undefined ? '' : `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
  const c = p.counts;
  const bytes = p.bytesTotal ? ` ${formatBytes(p.bytesRead ?? 0)}/${formatBytes(p.bytesTotal)}` : '';
  const eta = p.etaSeconds !== undefined ? ` eta ${p.etaSeconds}s` : '';
  return `${bar}${p.step}: ${formatCount(c.processed)} rows (${formatCount(c.succeeded)} ok, ${formatCount(c.failed)} rejected, ${formatCount(c.skipped)} skipped)${bytes} ${formatCount(p.rowsPerSecond)} rows/s${eta}${p.cancelRequested ? ' (cancelling)' : ''}`;
}

const detailLabels: Record<DetailCount, string> = { inserted: 'inserted', updated: 'updated', refreshed: 'refreshed', unchanged: 'unchanged', notFound: 'not found' };

/** The counts the run's kind adds: " (inserted 10, updated 2)", " (refreshed 7, unchanged 1, not found 2)". */
function details(c: Counts): string {
  const shown = detailCounts.filter((d) => c[d] !== undefined).map((d) => `${detailLabels[d]} ${formatCount(c[d]!)}`);
  return shown.length > 0 ? ` (${shown.join(', ')})` : '';
}

export function resultSummary(runId: string, result: RunResult | null, error?: { code: string; message: string }): string {
  if (!result) return `run ${runId}: failed${error ? ` (${error.code}): ${error.message}` : ''}`;
  const c = result.counts;
  const lines = [
    `run ${runId}: ${result.status} in ${(result.durationMs / 1000).toFixed(1)}s`,
    `  processed ${formatCount(c.processed)}, succeeded ${formatCount(c.succeeded)}${details(c)}, rejected ${formatCount(c.failed)}, skipped ${formatCount(c.skipped)}`,
  ];
  if (result.error) lines.push(`  stopped: ${result.error.message} (${result.error.code})`);
  if (result.preview) lines.push(...previewLines(result.preview));
  if (result.steps) lines.push(...stepLines(result.steps));
  for (const o of result.outputs) lines.push(`  file: ${o.location} (${o.rows === undefined ? '' : `${formatCount(o.rows)} rows, `}${formatBytes(o.bytes)}, sha256 ${o.sha256}); download: ${o.download}`);
  for (const w of result.warnings) lines.push(`  warning: ${w}`);
  if (result.errorCount > 0) {
    for (const e of result.errorSample.slice(0, 5)) lines.push(`  row ${e.row ?? '-'} (line ${e.line ?? '-'})${e.field ? ` ${e.field}` : ''}: ${e.message}`);
    lines.push(`  ${formatCount(result.errorCount)} row error(s): batchflow errors ${runId}  (or GET ${result.errorReport})`);
  }
  return lines.join('\n');
}

/** What a run would change: the match count and a few sample rows. */
export function previewLines(preview: Preview): string[] {
  return [
    `  ${formatCount(preview.matched)} row(s) match${preview.notFound ? ` (${formatCount(preview.notFound)} listed id(s) do not exist)` : ''}`,
    ...Object.entries(preview.steps ?? {}).map(([name, step]) => `    ${name}: ${formatCount(step.matched)}`),
    ...(preview.sample ?? []).slice(0, 5).map((row) => `    ${JSON.stringify(row)}`),
  ];
}

export function stepLines(steps: Record<string, StepState>): string[] {
  return Object.entries(steps).map(([name, s]) => {
    const counts = s.counts ? ` ${formatCount(s.counts.succeeded)} ok, ${formatCount(s.counts.failed)} rejected` : '';
    const why = s.error ? ` (${s.error.code}: ${s.error.message})` : s.reason ? ` (${s.reason})` : '';
    return `  step ${name}: ${s.status}${counts}${why}${s.runId ? ` [${s.runId}]` : ''}`;
  });
}
