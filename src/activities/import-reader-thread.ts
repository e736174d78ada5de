// The body of an import reader thread (see import-readers.ts): it opens the source, parses,
// validates and stages batches, one per request, and sends them to the slice that asked.
import { parentPort, workerData } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { createObjectStore, createS3Client, createSourceOpener } from '../storage';
import { CopyBuffer } from '../db/loader';
import { importBatches, type ImportBatch } from './import';
import type { ReaderReply, ReaderRequest } from './import-readers';

const { config } = workerData as { config: Config };
const s3Client = config.s3 ? createS3Client(config.s3) : undefined;
const sources = createSourceOpener({ store: createObjectStore(config, s3Client), s3Client, localSourceDirs: config.localSourceDirs, s3SourceBuckets: config.s3SourceBuckets });
const port = parentPort!;

let batches: AsyncGenerator<ImportBatch> | undefined;
// One buffer builder for the thread's life: buffers the slices give back are reused through it.
const copy = new CopyBuffer();

async function answer(request: ReaderRequest): Promise<ReaderReply> {
  switch (request.type) {
    case 'start':
      batches = importBatches(sources, request.params, request.from, config.parallelBatches - 1, copy);
      return { type: 'ready' };
    case 'next': {
      for (const buffer of request.recycled) copy.reuse(buffer);
      const next = await batches!.next();
      return next.done ? { type: 'done' } : { type: 'batch', batch: next.value };
    }
    case 'stop':
      await batches?.return(undefined);
      batches = undefined;
      return { type: 'stopped' };
  }
}

port.on('message', (request: ReaderRequest) => {
  answer(request).then(
    // A batch's COPY bytes move to the slice's thread rather than being copied.
    (reply) => port.postMessage(reply, reply.type === 'batch' ? [reply.batch.staged.copy.buffer] : []),
    (err: unknown) => {
      const failure = err instanceof ApplicationFailure ? err : undefined;
      port.postMessage({
        type: 'error',
        error: { message: err instanceof Error ? err.message : String(err), failureType: failure?.type ?? undefined, nonRetryable: failure?.nonRetryable ?? undefined, details: failure?.details ?? undefined },
      } satisfies ReaderReply);
    },
  );
});
