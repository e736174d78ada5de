import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { createSHA256, type IHasher } from 'hash-wasm';
import type { DatasetRegistry } from '../datasets';
import { exportReader, type ExportReader } from '../db/export';
import type { Pool, PoolClient } from '../db/pool';
import { runState } from '../db/queries';
import { rowQueries, type RowSelection } from '../db/row-queries';
import { ErrorCode, permanentFailure } from '../errors';
import { fileHead, fileTail, frameRows } from '../formats/writers';
import type { Checkpoint } from '../jobs/checkpoint';
import {
  checkExportParams,
  defaultExportKey,
  exportableColumns,
  exportContentType,
  exportStart,
  partTarget,
  type ExportParams,
  type ExportPlan,
  type ExportPosition,
} from '../jobs/export';
import { downloadPath, zeroCounts, type RunOutput, type RunRef } from '../jobs/run';
import { canonicalLocation, locateObject, type ObjectAccess } from '../storage';
import { multipartTo, PartBuffer, type MultipartTarget } from '../storage/multipart';
import { runSlice, type Batch } from './batch-runner';
import { requireDataset, requireValidParams } from './params';
import { planOrFail } from './row-slices';

const gzip = promisify(gzipCallback);

/** Rows Postgres writes per COPY: a part is whole chunks, so where parts end depends on the data alone. */
export const CHUNK_ROWS = 10_000;

export interface ExportSliceInput {
  run: RunRef;
  params: ExportParams;
  plan: ExportPlan;
  cursor?: Checkpoint<ExportPosition>;
}

/** One uploaded part: its end is the position after it (its ETag included). */
interface ExportPart extends Batch<ExportPosition> {
  rows: number;
}

const selectionOf = (datasets: DatasetRegistry, params: ExportParams, asOf: string): RowSelection => ({
  dataset: requireDataset(datasets, params.dataset),
  where: params.where,
  asOf: new Date(asOf),
});

const hashState = (hasher: IHasher) => Buffer.from(hasher.save()).toString('base64');
async function resumeHash(state: string | undefined): Promise<IHasher> {
  const hasher = await createSHA256();
  return state ? hasher.load(Buffer.from(state, 'base64')) : hasher.init();
}

/** A part ready to upload. */
interface PartBody {
  /** The part's bytes: a view of a buffer that partBodies fills again two parts later. */
  data: Buffer;
  lastId: number;
  rows: number;
  finished: boolean;
}

/** Rows of ids in (after, end], as the format's lines, in the pieces Postgres sent. */
interface RowChunk {
  end: number;
  pieces: Buffer[];
  rows: number;
}

/**
 * The chunks of rows from `after` on, in id order. Each chunk ends where CHUNK_ROWS matching rows
 * do, so chunks depend on the data alone. Up to `readers` connections read at once, each its own
 * chunk with its own COPY, so Postgres works on the next chunks while this one is handed on.
 */
async function* rowChunks(o: { pool: Pool; selection: RowSelection; reader: ExportReader; after: number; upTo: number; readers: number }): AsyncGenerator<RowChunk> {
  const clients: PoolClient[] = [];
  const inFlight: Promise<RowChunk>[] = [];
  let failed = false;
  try {
    for (let i = 0; i < o.readers; i++) {
      const client = await o.pool.connect();
      clients.push(client);
      await client.query('BEGIN READ ONLY');
      await o.reader.prepare(client);
    }
    for (let after = o.after, next = 0; after < o.upTo || inFlight.length > 0; ) {
      while (inFlight.length < clients.length && after < o.upTo) {
        // Round robin: this client's previous chunk has been handed on.
        const client = clients[next++ % clients.length]!;
        const start = after;
        const end = (await rowQueries.batchEnd(client, o.selection, start, o.upTo, CHUNK_ROWS)) ?? o.upTo;
        const chunk = o.reader.chunk(client, start, end).then((read) => ({ end, ...read }));
        chunk.catch(() => undefined);
        inFlight.push(chunk);
        after = end;
      }
      yield await inFlight.shift()!;
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await Promise.allSettled(inFlight);
    for (const client of clients) {
      if (!failed) await client.query('COMMIT').catch(() => undefined);
      // A connection that failed mid-COPY is not reused.
      client.release(failed);
    }
  }
}

/**
 * The file's bytes from a position on, as part bodies. A part is cut once it reaches its target
 * size, after a whole chunk; the file's head goes into its first part and its tail into its last.
 * With gzip every chunk is a gzip member of its own: members concatenate into one valid gzip
 * stream, and a resumed run compresses exactly the chunks an uninterrupted one would.
 *
 * Two buffers take turns: a part is built in one while the part before it uploads from the other.
 * The caller is done with a part (it has uploaded it) before it asks for the part after the next.
 */
async function* partBodies(o: { pool: Pool; selection: RowSelection; params: ExportParams; plan: ExportPlan; from: ExportPosition; readers: number }): AsyncGenerator<PartBody> {
  const { selection, params, plan, from } = o;
  const reader = exportReader({ selection, columns: plan.columns, format: params.format, csvFormulaEscape: params.csvFormulaEscape });
  let partNumber = from.parts.length + 1;
  // A part overshoots its target by at most a chunk: a quarter more is room enough for most.
  const capacity = partTarget(params.partSizeMb, partNumber) * 1.25;
  const buffers = [new PartBuffer(capacity), new PartBuffer(capacity)];
  const bufferOf = (n: number) => buffers[n % 2]!;
  let part = bufferOf(partNumber);
  let lastId = from.lastId;
  let rows = from.rows;
  let head = from.parts.length === 0 ? fileHead(params.format, plan.columns) : '';
  /** Adds a chunk's bytes; an empty chunk adds nothing, unless it is the whole file (a gzip file is never empty). */
  const add = async (content: Buffer[], wholeFile = false) => {
    const length = content.reduce((n, bytes) => n + bytes.length, 0);
    if (length === 0 && !wholeFile) return;
    if (params.gzip) part.append(await gzip(Buffer.concat(content, length)));
    else for (const bytes of content) part.append(bytes);
  };

  let finished = false;
  for await (const chunk of rowChunks({ pool: o.pool, selection, reader, after: from.lastId, upTo: plan.upTo, readers: o.readers })) {
    finished = chunk.end >= plan.upTo;
    const framed = frameRows(params.format, chunk.pieces, rows === 0);
    lastId = chunk.end;
    rows += chunk.rows;
    await add([Buffer.from(head), ...framed, Buffer.from(finished ? fileTail(params.format, rows) : '')]);
    head = '';
    if (!finished && part.size >= partTarget(params.partSizeMb, partNumber)) {
      yield { data: part.bytes, lastId, rows, finished: false };
      partNumber += 1;
      part = bufferOf(partNumber);
      part.clear();
    }
  }
  // Nothing matched (or nothing was left): the file ends here all the same.
  if (!finished) await add([Buffer.from(head + fileTail(params.format, rows))], from.bytes + part.size === 0);
  yield { data: part.bytes, lastId, rows, finished: true };
}

/**
 * The parts of an export from a checkpoint on, each uploaded before it is handed over: the
 * checkpoint committed with it then holds its ETag. The next part is read from Postgres while
 * the one before it uploads.
 */
async function* uploadedParts(o: {
  pool: Pool;
  target: MultipartTarget;
  selection: RowSelection;
  params: ExportParams;
  plan: ExportPlan;
  from: Checkpoint<ExportPosition>;
  readers: number;
}): AsyncGenerator<ExportPart> {
  const from = o.from.position;
  if (from.finished) return;
  const uploadId = from.uploadId!;
  if (o.from.seq > 0) await checkUploadedParts(o.target, uploadId, from.parts);
  const hasher = await resumeHash(from.sha256);
  const parts = [...from.parts];
  let bytes = from.bytes;
  let rows = from.rows;
  let pending: { body: PartBody; sha256: string; bytes: number; upload: Promise<string> } | undefined;
  const handOver = async (p: NonNullable<typeof pending>): Promise<ExportPart> => {
    parts.push(await p.upload);
    const end: ExportPosition = { lastId: p.body.lastId, rows: p.body.rows, bytes: p.bytes, uploadId, parts: [...parts], sha256: p.sha256, finished: p.body.finished };
    const part: ExportPart = { end, rows: p.body.rows - rows, errors: [], rejectedRows: 0, dataset: o.params.dataset };
    rows = p.body.rows;
    return part;
  };
  try {
    for await (const body of partBodies({ pool: o.pool, selection: o.selection, params: o.params, plan: o.plan, from, readers: o.readers })) {
      hasher.update(body.data);
      bytes += body.data.length;
      const upload = o.target.uploadPart(uploadId, parts.length + (pending ? 2 : 1), body.data);
      upload.catch(() => undefined);
      const next = { body, sha256: hashState(hasher), bytes, upload };
      if (pending) yield await handOver(pending);
      pending = next;
    }
    if (pending) {
      const last = pending;
      pending = undefined;
      yield await handOver(last);
    }
  } finally {
    // A slice that stops early lets the part already on its way arrive; the next slice sends it again.
    await pending?.upload.catch(() => undefined);
  }
}

/** A retry first checks that the parts its checkpoint lists are still in the upload, unchanged. */
async function checkUploadedParts(target: MultipartTarget, uploadId: string, parts: readonly string[]): Promise<void> {
  const listed = await target.listParts(uploadId);
  if (!listed) throw permanentFailure(ErrorCode.UploadLost, 'the export\'s multipart upload no longer exists (aborted, or expired by a lifecycle rule): start the export again');
  const differs = parts.findIndex((etag, i) => listed.get(i + 1) !== etag);
  if (differs !== -1) throw permanentFailure(ErrorCode.UploadLost, `part ${differs + 1} of the export's upload is missing or was replaced: start the export again`);
}

export function createExportActivities(deps: { pool: Pool; datasets: DatasetRegistry; objects: ObjectAccess; sliceMs: number; parallelBatches: number }) {
  const { pool } = deps;
  const targetOf = (plan: ExportPlan) => multipartTo(locateObject(deps.objects, plan.location, ErrorCode.DestinationNotAllowed));
  const storedPosition = async (run: RunRef) => (await runState.readCheckpoint<Checkpoint<ExportPosition>>(pool, run.execution))?.checkpoint.position;

  /**
   * Creates the run's multipart upload unless it has one, and records it at once: a retry must go
   * on with it, and a failed or cancelled run must find it to abort it.
   */
  async function ensureUpload(run: RunRef, target: MultipartTarget, plan: ExportPlan): Promise<void> {
    if ((await storedPosition(run))?.uploadId) return;
    await runState.register(pool, run);
    const uploadId = await target.create(plan.contentType);
    const checkpoint: Checkpoint<ExportPosition> = { seq: 0, position: { ...exportStart, uploadId }, counts: zeroCounts(), done: false, warnings: [] };
    await runState.ensureCheckpoint(pool, run.execution, checkpoint);
    const recorded = (await storedPosition(run))?.uploadId;
    if (recorded === uploadId) return;
    if (recorded) await target.abort(uploadId); // another attempt recorded its own first
    else await runState.writeCheckpoint(pool, run.execution, 0, checkpoint);
  }

  return {
    /** Checks the destination, counts the matching rows and fixes the highest id the export may reach. */
    async planExport({ run, params, asOf }: { run: RunRef; params: ExportParams; asOf: string }): Promise<ExportPlan> {
      requireValidParams(checkExportParams(params, deps.datasets));
      const location = canonicalLocation(params.destination ?? defaultExportKey(run.id, params));
      locateObject(deps.objects, location, ErrorCode.DestinationNotAllowed);
      return planOrFail(pool, run, async () => {
        const selection = selectionOf(deps.datasets, params, asOf);
        await rowQueries.analyzeIfStale(pool, selection.dataset);
        const { matched, maxId } = await rowQueries.count(pool, selection);
        const columns = params.columns ?? exportableColumns(selection.dataset, params.includeSecrets);
        return { asOf, matched, upTo: maxId, columns, location, contentType: exportContentType(params) };
      });
    },

    /** Writes and uploads part after part from the run's checkpoint for about sliceMs. */
    async exportSlice({ run, params, plan, cursor }: ExportSliceInput): Promise<Checkpoint<ExportPosition>> {
      const target = targetOf(plan);
      const selection = selectionOf(deps.datasets, params, plan.asOf);
      await ensureUpload(run, target, plan);
      return runSlice<ExportPosition, ExportPart>({
        pool,
        run,
        sliceMs: deps.sliceMs,
        policy: { errorHandling: 'continue_on_error' },
        cursor,
        initialPosition: exportStart,
        // Chunks are read on parallelBatches connections at once.
        batches: (from) => uploadedParts({ pool, target, selection, params, plan, from, readers: deps.parallelBatches }),
        // The part is uploaded; committing its checkpoint is all that is left.
        apply: (_client, part) => Promise.resolve({ succeeded: part.rows, skipped: 0, errors: [], rejectedRows: 0 }),
      });
    },

    /** Completes the upload, so the file appears whole, and describes it. */
    async completeExport({ run, plan }: { run: RunRef; plan: ExportPlan }): Promise<RunOutput> {
      const position = await storedPosition(run);
      if (!position?.finished || !position.uploadId) throw permanentFailure(ErrorCode.RunFailed, `export ${run.id} has not written its last part`);
      await targetOf(plan).complete(position.uploadId, position.parts, position.bytes);
      const sha256 = (await resumeHash(position.sha256)).digest('hex');
      return { location: plan.location, contentType: plan.contentType, bytes: position.bytes, rows: position.rows, sha256, download: downloadPath(run.id) };
    },

    /** Drops the upload of a run that failed or was cancelled: no part of its file stays behind. */
    async abortExport({ run, plan }: { run: RunRef; plan: ExportPlan }): Promise<void> {
      const position = await storedPosition(run);
      if (position?.uploadId) await targetOf(plan).abort(position.uploadId);
    },
  };
}
