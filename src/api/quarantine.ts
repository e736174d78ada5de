import { stringify } from 'csv-stringify/sync';
import { detectFormat, type Format, type ReadPosition } from '../formats';
import type { Pool } from '../db/pool';
import { runState } from '../db/queries';
import { replayQueries } from '../db/replays';
import { REPLAY_ROW_FIELD, type ImportParams } from '../jobs/import';
import type { Checkpoint } from '../jobs/checkpoint';
import type { RunService, RunView } from './runs';

/**
 * Quarantine: an import's rejected rows as a file in the input's own format and columns, ready to
 * fix and import again as a replay. Each row carries `_row`, the row it was in the first run (a
 * replay of a replay keeps the first run's numbers), which is how a replay credits the rows it fixes.
 */

const PAGE = 5_000;

/** The format an import read its source as. */
export const formatOf = (params: ImportParams): Format => params.format ?? detectFormat(params.source) ?? 'csv';

/** Unreadable records (a bad line) keep their text as it was; rows are objects of source field → value. */
type Raw = Record<string, unknown> | string;

async function* rejected(pool: Pool, execution: string): AsyncGenerator<{ row: number; raw: Raw }[]> {
  for (let after = 0; ; ) {
    const page = await replayQueries.rejectedRows(pool, execution, after, PAGE);
    if (page.length === 0) return;
    yield page.filter((r): r is { row: number; raw: Raw } => typeof r.raw === 'string' || (typeof r.raw === 'object' && r.raw !== null));
    after = page.at(-1)!.row;
  }
}

/** The row number a rejected row goes out with: the first run's, if this run was a replay. */
const firstRunRow = (row: number, raw: Raw) => (typeof raw === 'object' && raw[REPLAY_ROW_FIELD] != null ? raw[REPLAY_ROW_FIELD] : row);

/** The rejected rows of an import run's execution, as text chunks of a file in its input's format. */
export async function* rejectedFile(pool: Pool, execution: string, params: ImportParams): AsyncGenerator<string> {
  const format = formatOf(params);
  if (format === 'csv') {
    const { delimiter } = params;
    const stored = await runState.readCheckpoint<Checkpoint<ReadPosition>>(pool, execution);
    let fields = stored?.checkpoint.position.header?.filter((h) => h !== REPLAY_ROW_FIELD);
    let sent = false;
    const header = () => stringify([[REPLAY_ROW_FIELD, ...(fields ?? [])]], { delimiter });
    for await (const page of rejected(pool, execution)) {
      fields ??= Object.keys(page.find((r) => typeof r.raw === 'object')?.raw ?? {}).filter((h) => h !== REPLAY_ROW_FIELD);
      if (!sent) yield header();
      sent = true;
      const line = ({ row, raw }: { row: number; raw: Raw }) =>
        typeof raw === 'string' ? `${row}${delimiter}${raw}\n` : stringify([[firstRunRow(row, raw), ...fields!.map((f) => raw[f] ?? '')]], { delimiter, cast: { number: String, boolean: String } });
      yield page.map(line).join('');
    }
    if (!sent) yield header();
    return;
  }
  const record = ({ row, raw }: { row: number; raw: Raw }) => (typeof raw === 'string' ? raw : JSON.stringify({ [REPLAY_ROW_FIELD]: firstRunRow(row, raw), ...raw }));
  if (format === 'ndjson') {
    for await (const page of rejected(pool, execution)) yield page.map((r) => `${record(r)}\n`).join('');
    return;
  }
  let first = true;
  yield '[';
  for await (const page of rejected(pool, execution)) {
    for (const r of page) {
      yield `${first ? '\n' : ',\n'}${record(r)}`;
      first = false;
    }
  }
  yield '\n]\n';
}

/** An import's replays as its view shows them (those of its current execution); undefined for other kinds and running imports. */
export async function replaysOf(pool: Pool, runs: RunService, view: RunView): Promise<RunView['replays']> {
  if (view.kind !== 'import' || view.status === 'running') return undefined;
  const summary = await replayQueries.summary(pool, await runs.execution(view.runId));
  return { rejectedRows: view.result?.counts.failed ?? 0, acceptedLater: summary.acceptedLater, runs: summary.replays, ...(summary.replayOf !== null && { replayOf: summary.replayOf }) };
}
