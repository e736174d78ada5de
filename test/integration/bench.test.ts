import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers/stack';

const workloads = ['import-1m', 'bulk-update-1m', 'export-1m', 'dedupe-1m', 'cache-refresh-10k', 'invoicing-10k'];

// Figures are never asserted (timings lie on a shared machine): this only keeps every workload
// runnable, as a schema change once broke one unnoticed until the next full `npm run bench`.
describe('npm run bench', () => {
  it('runs every workload at a small size and ends with one JSON line naming each', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench/run.ts')], {
      cwd: repoRoot,
      // Its own stack on free ports: none of this test run's settings may leak into it.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, BENCH_ROWS: '2000', BENCH_CACHE_ROWS: '100', BENCH_INVOICING_CUSTOMERS: '10' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const last = stdout.trimEnd().split('\n').at(-1)!;
    const results = JSON.parse(last) as Record<string, { oursSeconds: number; referenceSeconds: number; ratio: number; peakRssMb: number }>;
    assert.deepEqual(Object.keys(results), workloads);
    for (const [name, r] of Object.entries(results)) {
      for (const figure of ['oursSeconds', 'referenceSeconds', 'ratio', 'peakRssMb'] as const) assert.ok(Number.isFinite(r[figure]) && r[figure] > 0, `${name}.${figure}: ${r[figure]}`);
    }
    assert.equal((results['dedupe-1m'] as unknown as { recall: number }).recall, 1, 'dedupe finds every planted pair at this size');
  });
});
