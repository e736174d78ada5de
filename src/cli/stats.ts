import { parseArgs } from 'node:util';
import type { Stats } from '../stats';
import { ExitCode, type ApiClient } from './http';
import { formatTable, timeArg } from './table';

const STATUSES = ['running', 'awaiting_approval', 'success', 'partial', 'failed', 'cancelled'] as const;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** `batchflow stats [--from T] [--to T] [--json]`: the figures of the runs that started in a window. */
export async function statsCommand(api: ApiClient, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } } });
  const window = { from: timeArg(values.from), to: timeArg(values.to) };
  const query = new URLSearchParams(Object.entries(window).filter((e): e is [string, string] => e[1] !== undefined));
  const { body: s } = await api.request<Stats>('GET', `/stats?${query.toString()}`);
  if (values.json) {
    console.log(JSON.stringify(s, null, 2));
    return ExitCode.Success;
  }
  const sections = [
    `${s.runs.total} run(s) started from ${s.from} to ${s.to}`,
    formatTable(['kind', ...STATUSES], Object.entries(s.runs.byKind).map(([kind, byStatus]) => [kind, ...STATUSES.map((st) => byStatus[st] ?? 0)])),
    formatTable(['dataset', 'processed', 'succeeded', 'rejected', 'skipped'], Object.entries(s.rows).map(([dataset, r]) => [dataset, r.processed, r.succeeded, r.rejected, r.skipped])),
    formatTable(['error code', 'runs', 'rows'], s.topErrorCodes.map((e) => [e.code, e.runs, e.rows])),
    formatTable(['kind', 'finished', 'p50', 'p95'], Object.entries(s.durations).map(([kind, d]) => [kind, d.runs, seconds(d.p50Ms), seconds(d.p95Ms)])),
    `${s.awaitingApproval.count} run(s) awaiting approval${s.awaitingApproval.runs.map((r) => `\n  ${r.runId} (${r.kind ?? '?'}${r.dataset ? ` on ${r.dataset}` : ''}, since ${r.startTime}): batchflow approve ${r.runId}`).join('')}`,
  ];
  console.log(sections.join('\n\n'));
  return ExitCode.Success;
}
