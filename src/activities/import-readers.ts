import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import type { Dataset, DatasetDeclaration } from '../datasets';
import type { ReadPosition } from '../formats';
import type { Checkpoint } from '../jobs/checkpoint';
import type { ImportParams } from '../jobs/import';
import { SPARE_BUFFERS } from '../db/loader';
import type { ImportBatch } from './import';

/** Messages between a slice and its reader thread: one request, one reply, in turn. */
export type ReaderRequest =
  // The dataset travels as its declaration: the thread compiles it, whatever files it could read.
  | { type: 'start'; dataset: DatasetDeclaration; params: ImportParams; from: Checkpoint<ReadPosition> }
  // Buffers of batches already loaded travel back with the request, for the thread to fill again.
  | { type: 'next'; recycled: ArrayBuffer[] }
  | { type: 'stop' };
export type ReaderReply =
  | { type: 'ready' | 'done' | 'stopped' }
  | { type: 'batch'; batch: ImportBatch }
  | { type: 'error'; error: { message: string; failureType?: string; nonRetryable?: boolean; details?: unknown[] } };

// Threads are kept between slices: a new one loads its modules again.
const MAX_IDLE = 2;

// A reader's live data is one or two batches, but it allocates fast: left to V8's defaults for a
// 24 GiB machine, its heap grew to over 100 MB between full collections. An explicit ceiling
// makes V8 collect earlier (its peak stays near 40 MB on a 1M-row import) and is far above any
// batch's needs.
const READER_HEAP = { maxYoungGenerationSizeMb: 24, maxOldGenerationSizeMb: 512 };

let compiled: Promise<string> | undefined;

/**
 * The reader thread's code, compiled once per process into one ES module. The thread then runs
 * plain JavaScript: no TypeScript loader of its own, which would double its memory and start-up
 * time. Packages stay outside the module, imported from where this process resolves them.
 */
function threadCode(): Promise<string> {
  compiled ??= build({
    entryPoints: [fileURLToPath(new URL('./import-reader-thread.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'packages-by-url',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => ({ path: import.meta.resolve(args.path), external: true }));
        },
      },
    ],
  }).then((result) => result.outputFiles[0]!.text);
  return compiled;
}

/** A reader thread with at most one request in flight. */
class ReaderThread {
  private pending?: { resolve: (reply: ReaderReply) => void; reject: (err: Error) => void };
  dead = false;

  constructor(private readonly worker: Worker) {
    worker.unref();
    worker.on('message', (reply: ReaderReply) => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.resolve(reply);
    });
    const fail = (err: Error) => {
      this.dead = true;
      this.pending?.reject(err);
      this.pending = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`import reader thread exited with code ${code}`)));
  }

  request(message: ReaderRequest): Promise<ReaderReply> {
    if (this.dead) return Promise.reject(new Error('import reader thread is gone'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(message, message.type === 'next' ? message.recycled : []);
    });
  }

  terminate = () => this.worker.terminate();
}

/** The error a thread reported, as the activity would have thrown it itself. */
function revive(error: Extract<ReaderReply, { type: 'error' }>['error']): Error {
  if (error.failureType === undefined) return new Error(error.message);
  return ApplicationFailure.create({ type: error.failureType, message: error.message, nonRetryable: error.nonRetryable, details: error.details });
}

/**
 * Reads, validates and stages import files in worker threads, so that this thread's event loop
 * only waits on Postgres and Temporal: parsing and loading run on two cores at once instead of
 * taking turns. Each slice borrows a thread; idle threads are kept for the next slice.
 */
export function createImportReaders(config: Config) {
  const idle: ReaderThread[] = [];
  const all = new Set<ReaderThread>();
  // COPY buffers of loaded batches, on their way back to a thread.
  let recycled: ArrayBuffer[] = [];
  const spawn = async () => {
    // Evaluated rather than loaded from a URL: its stack frames then read "[worker eval]".
    const thread = new ReaderThread(new Worker(await threadCode(), { eval: true, workerData: { config }, resourceLimits: READER_HEAP }));
    all.add(thread);
    return thread;
  };

  return {
    async *batches(dataset: Dataset, params: ImportParams, from: Checkpoint<ReadPosition>): AsyncGenerator<ImportBatch> {
      const thread = idle.pop() ?? (await spawn());
      try {
        await thread.request({ type: 'start', dataset: dataset.declaration, params, from });
        for (;;) {
          const giving = recycled;
          recycled = [];
          const reply = await thread.request({ type: 'next', recycled: giving });
          if (reply.type === 'error') throw revive(reply.error);
          if (reply.type !== 'batch') break;
          yield reply.batch;
        }
      } finally {
        const stopped = await thread.request({ type: 'stop' }).then(
          () => true,
          () => false,
        );
        if (stopped && idle.length < MAX_IDLE) idle.push(thread);
        else {
          all.delete(thread);
          await thread.terminate();
        }
      }
    },

    /** Gives a loaded batch's COPY bytes back, to be reused for a later batch. */
    recycle(bytes: Uint8Array<ArrayBuffer>): void {
      // An empty or already transferred buffer is not worth sending.
      if (bytes.buffer.byteLength > 0 && recycled.length < SPARE_BUFFERS) recycled.push(bytes.buffer);
    },

    async close(): Promise<void> {
      idle.length = 0;
      await Promise.all([...all].map((t) => t.terminate()));
      all.clear();
    },
  };
}
export type ImportReaders = ReturnType<typeof createImportReaders>;
