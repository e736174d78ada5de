// The body of an import reader thread (see import-readers.ts): it opens the source, parses,
// validates and stages batches, one per request, and sends them to the slice that asked.
import { parentPort, workerData } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { createStorage } from '../storage';
import { CopyBuffer } from '../db/loader';
import { compileDeclaration, type Dataset } from '../datasets';
import { importBatches, type ImportBatch } from './import';
import type { ReaderReply, ReaderRequest } from './import-readers';

const { config } = workerData as { config: Config };
const { sources } = createStorage(config);
const port = parentPort!;

let batches: AsyncGenerator<ImportBatch> | undefined;
// Compiled once per declaration: slices of one run follow each other on the same thread.
let compiled: { source: string; dataset: Dataset } | undefined;
// One buffer builder for the thread's life: buffers the slices give back are reused through it.
const copy = new CopyBuffer();

async function answer(request: ReaderRequest): Promise<ReaderReply> {
  switch (request.type) {
    case 'start': {
      const source = JSON.stringify(request.dataset);
      if (compiled?.source !== source) compiled = { source, dataset: compileDeclaration(request.dataset) };
      batches = importBatches(sources, compiled.dataset, request.params, request.from, config.parallelBatches - 1, copy);
      return { type: 'ready' };
    }
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
