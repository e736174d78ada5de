import type { Dataset, DatasetRegistry } from '../datasets';
import { UNDECIDED } from '../datasets/dataset';
import { CopyBuffer, loadBatch, loadStatements, stagedValues, type FirstSeen, type LoadOutcome, type LoadStatements, type StagedBatch, type StagedRow } from '../db/loader';
import { isRowRefusal, type Pool } from '../db/pool';
import { replayQueries } from '../db/replays';
import { ErrorCode, permanentFailure } from '../errors';
import { detectFormat, initialPosition, readRecords, SourceFormatError, type ReadPosition, type SourceRecord } from '../formats';
import type { Checkpoint } from '../jobs/checkpoint';
import { checkImportParams, REPLAY_ROW_FIELD, type ImportParams } from '../jobs/import';
import type { RowError, RunRef } from '../jobs/run';
import type { SourceOpener } from '../storage';
import { runSlice, type Batch } from './batch-runner';
import type { ImportReaders } from './import-readers';
import { requireDataset, requireValidParams } from './params';

export type ImportCheckpoint = Checkpoint<ReadPosition>;
export interface ImportSliceInput {
  run: RunRef;
  params: ImportParams;
  cursor?: ImportCheckpoint;
}

export interface ImportBatch extends Batch<ReadPosition> {
  /** The dataset columns the file feeds (known once the header is read). */
  columns?: string[];
  /** The source field of each column, where the file has a header: refused rows are reported by them. */
  fields?: string[];
  staged: StagedBatch;
  /** A replay's staged rows (row numbers in this file) and the rows of the first run they fix. */
  replayed?: { rows: number[]; fixes: number[] };
}

/** Which dataset columns a file feeds, and how a source record becomes a validated row. */
function planColumns(dataset: Dataset, params: ImportParams, header: string[] | undefined) {
  const warnings: string[] = [];
  let columns: string[];
  let fieldOf: Map<string, string> | undefined;
  if (header) {
    fieldOf = new Map();
    const ignored: string[] = [];
    for (const h of header) {
      // A replay file's own bookkeeping: which row of the first run each row fixes.
      if (params.replayOf !== undefined && h === REPLAY_ROW_FIELD) continue;
      const column = dataset.columnFor(h, params.mapping);
      if (column && ![...fieldOf.values()].includes(column)) fieldOf.set(h, column);
      else ignored.push(h);
    }
    columns = [...fieldOf.values()];
    const missing = dataset.columnNames.filter((c) => dataset.columns[c]!.required && !columns.includes(c));
    if (missing.length > 0) {
      throw permanentFailure(ErrorCode.MissingColumns, `the file has no column for required field(s) ${missing.join(', ')} (header: ${header.join(', ')}); add them or pass a mapping`);
    }
    if (ignored.length > 0) warnings.push(`ignored column(s) not in dataset ${dataset.name}: ${ignored.join(', ')}`);
  } else {
    columns = [...dataset.columnNames];
  }
  const specs = columns.map((c) => dataset.columns[c]!);
  const keyIndexes = dataset.key.map((k) => columns.indexOf(k));
  // With a header, the source field of each column; without one (JSON), fields are mapped per record.
  const fields = fieldOf && [...fieldOf.keys()];
  // Without a header, records name their fields themselves: map each field name once, not per
  // record (up to a bound, for files whose records all use other names).
  const columnOfField = new Map<string, string | undefined>();
  const columnFor = (field: string) => {
    if (columnOfField.has(field)) return columnOfField.get(field);
    const column = dataset.columnFor(field, params.mapping);
    if (columnOfField.size < 1_000) columnOfField.set(field, column);
    return column;
  };

  /** The row's values in column order, or its issues in the order z.object would report them. */
  const parse = (record: Record<string, unknown>): { values: unknown[] } | { issues: { field: string; message: string }[] } => {
    let byColumn: Record<string, unknown> | undefined;
    if (!fields) {
      byColumn = {};
      for (const [field, value] of Object.entries(record)) {
        const column = columnFor(field);
        if (column) byColumn[column] = value;
      }
    }
    const values = new Array<unknown>(columns.length);
    let issues: { field: string; message: string }[] | undefined;
    for (let i = 0; i < columns.length; i++) {
      const raw = fields ? record[fields[i]!] : byColumn![columns[i]!];
      const value = raw === '' || raw === null ? undefined : raw; // blanks and nulls count as missing
      const spec = specs[i]!;
      const quick = spec.quick ? spec.quick(value) : UNDECIDED;
      if (quick !== UNDECIDED) {
        values[i] = quick;
        continue;
      }
      const parsed = spec.schema.safeParse(value);
      if (parsed.success) values[i] = parsed.data;
      else for (const issue of parsed.error.issues) (issues ??= []).push({ field: [columns[i], ...issue.path].join('.'), message: issue.message });
    }
    return issues ? { issues } : { values };
  };
  return { columns, fields, keyIndexes, parse, warnings };
}

/**
 * Reads, validates and stages a file's rows batch by batch from a checkpoint (in a reader thread).
 * `loadingBeside` is how many earlier batches may still be loading while a batch loads
 * (BATCHFLOW_PARALLEL_BATCHES - 1): a batch repeating a key of any of them waits for them.
 */
export async function* importBatches(
  sources: SourceOpener,
  dataset: Dataset,
  params: ImportParams,
  from: ImportCheckpoint,
  loadingBeside: number,
  copy = new CopyBuffer(),
): AsyncGenerator<ImportBatch> {
  const format = params.format ?? detectFormat(params.source);
  if (!format) throw permanentFailure(ErrorCode.InvalidParams, `cannot tell the format of ${params.source}: pass format csv, ndjson or json`);
  const opened = await sources.open(params.source, from.position.byte);
  let plan = format === 'csv' && !from.position.header ? undefined : planColumns(dataset, params, from.position.header);
  let warnings = [...from.warnings, ...(plan && from.seq === 0 ? plan.warnings : [])];

  let batch: ImportBatch = newBatch(from.position);
  copy.clear();
  let keysInBatch = new Map<string, number>();
  // The keys of the batches before, which may still be loading beside this one (newest last).
  const keysLoadingBeside: ReadonlyMap<string, number>[] = [];
  const stopEarly = params.errorHandling === 'stop_on_error';
  const finishBatch = () => {
    const done = batch;
    done.staged.copy = copy.take();
    done.columns = plan?.columns;
    done.fields = plan?.fields;
    done.warnings = warnings;
    done.bytesTotal = opened.size;
    done.bytesRead = done.end.byte;
    done.dataset = dataset.name;
    batch = newBatch(done.end);
    keysLoadingBeside.push(keysInBatch);
    if (keysLoadingBeside.length > loadingBeside) keysLoadingBeside.shift();
    keysInBatch = new Map();
    return done;
  };

  try {
    for await (const records of readRecords(opened.stream, { format, delimiter: params.delimiter, start: from.position })) {
      for (const record of records) {
        batch.end = record.end;
        if (record.kind === 'header') {
          plan = planColumns(dataset, params, record.columns);
          warnings = [...warnings, ...plan.warnings];
          continue;
        }
        if (!plan) throw new Error('a CSV row arrived before its header');
        // The row staged for loading, or the errors that reject it.
        const checked = record.kind === 'invalid' ? [rowError(record, null, record.code, record.message, record.raw)] : validate(record, plan, dataset, keysInBatch);
        if (Array.isArray(checked)) {
          batch.errors.push(...checked);
          batch.rejectedRows += 1;
        } else {
          copy.add(checked);
          const fixes = params.replayOf !== undefined && record.kind === 'row' ? replayedRow(record.values) : undefined;
          if (fixes !== undefined) {
            batch.replayed ??= { rows: [], fixes: [] };
            batch.replayed.rows.push(checked.row);
            batch.replayed.fixes.push(fixes);
          }
          // A key a batch loading beside this one also has: loading both at once would race for its row.
          if (!batch.waitForPrevious && keysLoadingBeside.some((keys) => keys.has(checked.key))) batch.waitForPrevious = true;
          if (batch.staged.count++ === 0) batch.staged.firstRow = checked.row;
          batch.staged.lastRow = checked.row;
        }
        if (batch.staged.count + batch.rejectedRows >= params.batchSize || (stopEarly && batch.rejectedRows > 0)) yield finishBatch();
      }
    }
  } catch (err) {
    if (!(err instanceof SourceFormatError)) throw err;
    // Keep what was read before the damage, report the damage, and end the run there.
    batch.errors.push({ row: err.row ?? null, line: err.line ?? null, field: null, code: err.code, message: err.message, raw: null });
    batch.fatal = { code: ErrorCode.MalformedFile, message: err.message };
    yield finishBatch();
    return;
  } finally {
    opened.stream.destroy();
  }
  if (batch.staged.count + batch.rejectedRows > 0 || from.seq === 0) yield finishBatch();
}

/** The row of the first run a replayed record fixes, from its `_row` field. */
function replayedRow(values: Record<string, unknown>): number | undefined {
  const n = Number(values[REPLAY_ROW_FIELD]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

const newBatch = (at: ReadPosition): ImportBatch => ({ end: at, errors: [], rejectedRows: 0, staged: { copy: new Uint8Array(0), count: 0, firstRow: 0, lastRow: 0 } });

function rowError(record: { row: number; line: number }, field: string | null, code: ErrorCode, message: string, raw: unknown): RowError {
  return { row: record.row, line: record.line, field, code, message, raw };
}

// Messages name the key's column, not its value: they reach the result's error sample, and so
// workflow history, which holds no row data. The value is in the error's raw input.
const duplicateMessage = (dataset: Dataset, first: FirstSeen | undefined) =>
  `duplicate ${dataset.key.join(', ')}: first seen ${!first ? 'earlier' : 'row' in first ? `on row ${first.row}` : `in rows ${first.rows[0]}-${first.rows[1]}`}`;

/** A staged row, or the errors that reject it. */
function validate(
  record: Extract<SourceRecord, { kind: 'row' }>,
  plan: ReturnType<typeof planColumns>,
  dataset: Dataset,
  keysInBatch: Map<string, number>,
): StagedRow | RowError[] {
  const parsed = plan.parse(record.values);
  if ('issues' in parsed) return parsed.issues.map((issue) => rowError(record, issue.field, ErrorCode.ValidationFailed, issue.message, record.values));
  const { values } = parsed;
  const key = plan.keyIndexes.length === 1 ? String(values[plan.keyIndexes[0]!]) : plan.keyIndexes.map((i) => String(values[i])).join('\u001f');
  const earlier = keysInBatch.get(key);
  if (earlier !== undefined) {
    return [rowError(record, dataset.key.join(','), ErrorCode.DuplicateKey, duplicateMessage(dataset, { row: earlier }), record.values)];
  }
  keysInBatch.set(key, record.row);
  return { row: record.row, line: record.line, key, values };
}

/** Row errors for rows the database step refused, with the row's values under their source fields as raw input. */
function rejectionErrors(dataset: Dataset, columns: string[], fields: string[] | undefined, staged: StagedBatch, rejected: LoadOutcome['rejected']): RowError[] {
  // Decoded once for the batch: every row of it may be refused (insert mode over existing keys).
  const values = stagedValues(staged, new Set(rejected.map((r) => r.row)));
  return rejected.map((r) =>
    rowError(
      r,
      dataset.key.join(','),
      r.code,
      r.code === ErrorCode.DuplicateKey ? duplicateMessage(dataset, r.firstSeen) : `${dataset.key.join(', ')} already exists (mode insert)`,
      Object.fromEntries(columns.map((c, i) => [fields?.[i] ?? c, values.get(r.row)?.[i]])),
    ),
  );
}

/**
 * A batch the database refuses for good (a rule of its own the dataset does not declare, such as
 * a trigger): retrying would fail the same way, so the run fails, saying where and why. The
 * batches before it stay loaded.
 */
const refused =
  (staged: StagedBatch) =>
  (err: unknown): never => {
    if (!isRowRefusal(err)) throw err;
    const where = err.where ? ` (${err.where})` : '';
    throw permanentFailure(ErrorCode.BatchFailed, `the database refused the batch of rows ${staged.firstRow}-${staged.lastRow}: ${err.message}${where}`);
  };

export function createImportActivities(deps: { pool: Pool; readers: ImportReaders; datasets: DatasetRegistry; sliceMs: number; parallelBatches: number }) {
  return {
    /** Imports from the run's checkpoint for about sliceMs, heartbeating after every committed batch. */
    async importSlice({ run, params, cursor }: ImportSliceInput): Promise<ImportCheckpoint> {
      requireValidParams(checkImportParams(params, deps.datasets));
      const dataset = requireDataset(deps.datasets, params.dataset);
      const statements = new Map<string, LoadStatements>();
      const statementsFor = (columns: string[]) => {
        const key = columns.join(',');
        if (!statements.has(key)) statements.set(key, loadStatements(dataset, columns, params.mode));
        return statements.get(key)!;
      };
      return runSlice<ReadPosition, ImportBatch>({
        pool: deps.pool,
        run,
        sliceMs: deps.sliceMs,
        policy: params,
        cursor,
        initialPosition,
        // Two batches loading at once keep two Postgres backends busy; they still commit in order.
        parallelBatches: deps.parallelBatches,
        // Reading, validating and staging run in a thread of their own, side by side with loading.
        batches: (from) => deps.readers.batches(dataset, params, from),
        async apply(client, batch) {
          const { columns, staged } = batch;
          const loaded = columns && staged.count > 0 ? await loadBatch(client, run.execution, statementsFor(columns), params.mode, staged).catch(refused(staged)) : undefined;
          const errors = loaded && loaded.rejected.length > 0 ? rejectionErrors(dataset, columns!, batch.fields, staged, loaded.rejected) : [];
          if (params.replayOf !== undefined && batch.replayed) {
            // Committed with the batch: the first run's view counts each fixed row once.
            const refused = new Set(loaded?.rejected.map((r) => r.row));
            const fixed = batch.replayed.fixes.filter((_, i) => !refused.has(batch.replayed!.rows[i]!));
            await replayQueries.recordAccepted(client, run.execution, fixed);
          }
          deps.readers.recycle(staged.copy);
          return {
            succeeded: (loaded?.inserted ?? 0) + (loaded?.updated ?? 0),
            skipped: loaded?.skipped ?? 0,
            inserted: loaded?.inserted ?? 0,
            updated: loaded?.updated ?? 0,
            errors,
            rejectedRows: errors.length,
          };
        },
      });
    },
  };
}
