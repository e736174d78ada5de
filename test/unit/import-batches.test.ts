import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { importBatches } from '../../src/activities/import';
import { initialPosition } from '../../src/formats';
import { importParamsSchema } from '../../src/jobs/import';
import type { SourceOpener } from '../../src/storage';
import { users } from '../helpers/datasets';

/** A source that serves one CSV text from memory, from any byte offset. */
const memorySource = (csv: string): SourceOpener => ({
  open: (_source, start = 0) => Promise.resolve({ stream: Readable.from([Buffer.from(csv).subarray(start)]), size: Buffer.byteLength(csv) }),
});

describe('import batches', () => {
  const emails = ['a', 'b', 'c', 'A', 'd', 'b', 'e', 'f'].map((k) => `${k}@example.com`);
  const csv = ['email,name', ...emails.map((e) => `${e},Someone`)].join('\n');
  const params = importParamsSchema.parse({ source: '/in-memory.csv', dataset: 'users', batchSize: 2 });
  const from = { seq: 0, position: initialPosition, counts: { processed: 0, succeeded: 0, failed: 0, skipped: 0 }, done: false, warnings: [] };
  /** [first row, waits for the batches before] of each batch, with `loadingBeside` batches loading beside each. */
  const marks = async (loadingBeside: number) => {
    const out = [];
    for await (const batch of importBatches(memorySource(csv), users, params, from, loadingBeside)) if (batch.staged.count > 0) out.push([batch.staged.firstRow, batch.waitForPrevious ?? false]);
    return out;
  };

  it('two batches loading at once: marks a batch that repeats a key of the batch just before it, so the two never load side by side', async () => {
    // Rows 3-4 repeat "a" (row 4, as A: emails compare lowercased) of rows 1-2; rows 5-6 repeat
    // "b" of rows 1-2, two batches back, which has committed before rows 5-6 load.
    assert.deepEqual(await marks(1), [
      [1, false],
      [3, true],
      [5, false],
      [7, false],
    ]);
  });

  it('three batches loading at once (BATCHFLOW_PARALLEL_BATCHES=3): a repeat two batches back waits too', async () => {
    assert.deepEqual(await marks(2), [
      [1, false],
      [3, true],
      [5, true],
      [7, false],
    ]);
  });
});
