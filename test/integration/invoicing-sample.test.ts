import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { mailTo } from '../helpers/mailpit';
import { repoRoot, rowErrors, startRun, uniqueId, useStackWithWorker, waitForRun, writeFixture } from '../helpers/stack';

const exec = promisify(execFile);
const sampleCustomers = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'kaiju', 'zoe-cafe', 'soylent', 'vandelay', 'northwind', 'tyrell', 'wonka'];

describe('invoicing the sample month (examples/)', () => {
  const fixture = useStackWithWorker();
  let address: string;
  before(async () => {
    // The CLI talks HTTP: the test API listens on a free port (closed with the stack).
    address = await fixture.stack.app.listen({ port: 0, host: '127.0.0.1' });
  });

  /** The CLI against the test API; resolves with its exit code and output. */
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), ...args], { cwd: repoRoot, env: { ...process.env, BATCHFLOW_API_URL: address } });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('imports the sample customers and usage, bills October 2026 from the CLI, and shows the notifications', async () => {
    for (const [file, dataset] of [
      ['customers.csv', 'customers'],
      ['usage-2026-10.csv', 'usage_events'],
    ] as const) {
      // Workers read local files from their imports directory only.
      const source = await writeFixture(file, await fs.readFile(path.join(repoRoot, 'examples', file)));
      const runId = await startRun(fixture.stack, 'import', { source, dataset, mode: 'upsert' });
      assert.equal((await waitForRun(fixture.stack, runId)).status, 'success');
    }

    const runId = uniqueId('sample-invoicing');
    const run = await cli(['run', 'invoicing', '--params', 'examples/invoicing-2026-10.yaml', '--run-id', runId]);
    // Northwind has no email address: the run is partial (exit code 2), every other invoice is sent.
    assert.equal(run.code, 2, run.stderr);
    const result = (await waitForRun(fixture.stack, runId)).result!;
    // The params file bills every customer: on a database other tests used, theirs may be billed too.
    assert.deepEqual(
      (await rowErrors(fixture.stack, runId)).map((e) => [e.code, (e.raw as { customer: string }).customer]).filter(([, customer]) => sampleCustomers.includes(customer!)),
      [['NO_EMAIL_ADDRESS', 'northwind']],
    );
    assert.ok(result.warnings.includes('usage in 2026-10 of 1 customer missing from the customers dataset was not billed (1 event)'), JSON.stringify(result.warnings));
    const { rows } = await fixture.stack.pool.query<{ external_id: string; status: string; currency: string }>(
      `SELECT c.external_id, i.status, i.currency FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.period = '2026-10' AND c.external_id = ANY($1) ORDER BY c.external_id`,
      [sampleCustomers],
    );
    assert.equal(rows.length, 12);
    assert.deepEqual(rows.filter((r) => r.status !== 'sent').map((r) => [r.external_id, r.status]), [['northwind', 'failed']]);
    assert.deepEqual([...new Set(rows.map((r) => r.currency))].sort(), ['EUR', 'GBP', 'JPY', 'USD']);
    assert.equal((await mailTo('billing@acme.example.com')).length, 1);
    assert.ok((await mailTo('billing-ops@example.com')).some((m) => m.Subject === `[Batchflow] invoicing run ${runId} ended partial`));

    const notifications = await cli(['notifications', runId]);
    assert.equal(notifications.code, 0, notifications.stderr);
    assert.match(notifications.stdout, /run\.partial.*email.*billing-ops@example\.com.*delivered/);
    assert.match(notifications.stdout, /1 delivered, 0 failed, 0 pending/);
  });
});
