import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createObjectStore, createS3Client } from '../../src/storage';
import { buffer } from 'node:stream/consumers';
import { invoicesOf, ownCustomers, seedMonth } from '../helpers/invoicing';
import { searchMail } from '../helpers/mailpit';
import { openStack, spawnWorker, startRun, testConfig, uniqueId, waitForRun, type Stack } from '../helpers/stack';

let stack: Stack;
before(async () => {
  stack = await openStack(testConfig({ BATCHFLOW_SLICE_SECONDS: '1' }));
});
after(() => stack.close());

/** Polls until `ready` holds. */
async function waitUntil(what: string, ready: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('a worker killed (SIGKILL) while rendering PDFs and again while sending emails: one invoice, number, PDF and email per customer', async () => {
  const customers = 400;
  const p = uniqueId('kill');
  // A month of its own, so that the object store's folder for it holds this test's PDFs only.
  const period = `20${10 + Math.floor(Math.random() * 10)}-${String(1 + Math.floor(Math.random() * 12)).padStart(2, '0')}`;
  await seedMonth(stack.pool, p, customers, 3, period);
  const count = async (where: string) =>
    (await stack.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE c.external_id LIKE $1 AND i.period = $2 AND ${where}`, [`${p}-%`, period])).rows[0]!.n;

  let worker = spawnWorker(stack.config);
  const killAndRestart = async () => {
    worker.kill('SIGKILL');
    await worker.exited;
    worker = spawnWorker(stack.config);
  };
  let runId: string;
  try {
    runId = await startRun(stack, 'invoicing', { period, where: ownCustomers(p), batchSize: 20 });
    await waitUntil('PDFs being rendered', async () => (await count('i.pdf_key IS NOT NULL')) >= 40);
    await killAndRestart();
    const renderedAtKill = await count('i.pdf_key IS NOT NULL');
    assert.ok(renderedAtKill < customers, `killed while rendering (${renderedAtKill} of ${customers} recorded)`);

    await waitUntil('emails being sent', async () => (await count(`i.email_state <> 'pending'`)) >= 40);
    await killAndRestart();
    const sentAtKill = await count(`i.email_state = 'sent'`);
    assert.ok(sentAtKill < customers, `killed while sending (${sentAtKill} of ${customers} sent)`);

    const run = await waitForRun(stack, runId, undefined, 300_000);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.deepEqual({ ...run.result!.counts }, { processed: 4 * customers, succeeded: 4 * customers, failed: 0, skipped: 0, total: 4 * customers });
  } finally {
    worker.kill('SIGTERM');
    await worker.exited;
  }

  // One invoice per customer, each with its own number.
  const invoices = [...(await invoicesOf(stack.pool, p, period)).values()];
  assert.equal(invoices.length, customers);
  assert.equal(new Set(invoices.map((i) => i.number)).size, customers);
  assert.ok(invoices.every((i) => i.status === 'sent'));

  // One PDF per invoice: the month's folder holds exactly the invoices' keys, each with the recorded bytes.
  const s3 = createS3Client(stack.config.s3!);
  const keys: string[] = [];
  for (let token: string | undefined; ; ) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: stack.config.s3!.bucket, Prefix: `invoices/${period}/`, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
    if (!token) break;
  }
  s3.destroy();
  assert.deepEqual(keys.sort(), invoices.map((i) => i.pdfKey!).sort());
  const store = createObjectStore(stack.config);
  for (const invoice of invoices.slice(0, 50)) {
    const pdf = await buffer((await store.open(invoice.pdfKey!)).stream);
    assert.equal(createHash('sha256').update(pdf).digest('hex'), invoice.pdfSha256, `${invoice.number}: the stored PDF is the recorded one`);
  }

  // One email per invoice. The one exception the design admits: a worker killed between the SMTP
  // server accepting a message and the database recording it. That invoice shows two attempts,
  // the run names it in its warnings, and both copies carry the invoice's Message-ID.
  const mails = await searchMail(`to:"${p}."`);
  const copies = new Map<string, number>();
  for (const m of mails) copies.set(`<${m.MessageID}>`, (copies.get(`<${m.MessageID}>`) ?? 0) + 1);
  const run = await waitForRun(stack, runId!);
  for (const invoice of invoices) {
    const n = copies.get(invoice.messageId!) ?? 0;
    if (n === 1) continue;
    assert.equal(n, 2, `${invoice.number}: ${n} emails`);
    assert.ok(invoice.emailAttempts > 1, `${invoice.number}: a second copy only after an interrupted attempt`);
    assert.ok(run.result!.warnings.some((w) => w.includes(invoice.number!)), `${invoice.number}: named in the warnings`);
  }
  assert.equal(copies.size, customers, 'no email that is not an invoice of this run');
});
