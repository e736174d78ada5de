import { Worker } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import type { ReadPosition } from '../formats';
import type { Checkpoint } from '../jobs/checkpoint';
import type { ImportParams } from '../jobs/import';
import type { ImportBatch } from './import';

/** Messages between a slice and its reader thread: one request, one reply, in turn. */
export type ReaderRequest = { type: 'start'; params: ImportParams; from: Checkpoint<ReadPosition> } | { type: 'next' } | { type: 'stop' };
export type ReaderReply =
  | { type: 'ready' | 'done' | 'stopped' }
  | { type: 'batch'; batch: ImportBatch }
  | { type: 'error'; error: { message: string; failureType?: string; nonRetryable?: boolean; details?: unknown[] } };

// Thread start-up compiles the TypeScript sources again (about half a second): threads are kept.
const MAX_IDLE = 2;

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
      this.worker.postMessage(message);
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
  const spawn = () => {
    // The thread runs TypeScript like this process: tsx first, then the reader module.
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./import-reader-thread.ts', import.meta.url).href;
    const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
    const thread = new ReaderThread(new Worker(boot, { eval: true, workerData: { config } }));
    all.add(thread);
    return thread;
  };

  return {
    async *batches(params: ImportParams, from: Checkpoint<ReadPosition>): AsyncGenerator<ImportBatch> {
      const thread = idle.pop() ?? spawn();
      try {
        await thread.request({ type: 'start', params, from });
        for (;;) {
          const reply = await thread.request({ type: 'next' });
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

    async close(): Promise<void> {
      idle.length = 0;
      await Promise.all([...all].map((t) => t.terminate()));
      all.clear();
    },
  };
}
export type ImportReaders = ReturnType<typeof createImportReaders>;
