import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createInvoicingActivities } from '../../src/activities/invoicing';
import type { Checkpoint, KeysetPosition } from '../../src/jobs/checkpoint';
import type { RunPlan } from '../../src/jobs/run';
import { requireDatabaseUrl } from '../../src/config';
import { loadDatasets } from '../../src/datasets';
import { createPool } from '../../src/db/pool';
import { invoicingParamsSchema } from '../../src/jobs/invoicing';
import { createMailer, type Mailer } from '../../src/notifications/mailer';
import { createObjectStore } from '../../src/storage';
import { historyText, rowErrors, startRun, uniqueId, useStackWithWorker, waitForRun } from '../helpers/stack';
import { invoicesOf, numbersOfYear, ownCustomers, seedCustomers, seedUsage, type InvoiceRow } from '../helpers/invoicing';
import { mailAttachment, mailTo, readMail, waitForMail } from '../helpers/mailpit';
import { pdfText } from '../helpers/pdf';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhooks';

describe('invoicing', () => {
  const fixture = useStackWithWorker();
  const pool = () => fixture.stack.pool;
  const store = () => createObjectStore(fixture.stack.config);
  const year = new Date().getUTCFullYear();
  let hooks: WebhookReceiver;
  before(async () => {
    hooks = await startWebhookReceiver();
  });
  after(() => hooks.close());

  /** Two billable customers (EUR and JPY) with usage in October 2026, and one with usage only in September. */
  async function seedOctober(p: string) {
    await seedCustomers(pool(), p, [{ key: 'eur', name: 'Zoë Café GmbH', address_line1: 'Hauptstraße 5', city: 'Berlin' }, { key: 'jpy', currency: 'JPY' }, { key: 'idle' }]);
    await seedUsage(pool(), p, [
      { customer: 'eur', metric: 'api_calls', quantity: '1000', unitPrice: '0.0125', at: '2026-10-01T00:00:00Z' },
      { customer: 'eur', metric: 'api_calls', quantity: '2500', unitPrice: '0.0125', at: '2026-10-15T12:00:00Z' },
      { customer: 'eur', metric: 'api_calls', quantity: '1234', unitPrice: '0.0125', at: '2026-10-31T23:59:59Z' },
      { customer: 'eur', metric: 'storage_gb', quantity: '10.5', unitPrice: '0.333', at: '2026-10-20T00:00:00Z' },
      // Outside the month, either side: not billed.
      { customer: 'eur', metric: 'api_calls', quantity: '999', unitPrice: '0.0125', at: '2026-09-30T23:59:59Z' },
      { customer: 'eur', metric: 'api_calls', quantity: '999', unitPrice: '0.0125', at: '2026-11-01T00:00:00Z' },
      { customer: 'jpy', metric: 'seats', quantity: '7', unitPrice: '123.5', at: '2026-10-02T00:00:00Z' },
      { customer: 'idle', metric: 'seats', quantity: '1', unitPrice: '10', at: '2026-09-02T00:00:00Z' },
    ]);
  }

  const runMonth = async (p: string, extra: object = {}) => {
    const runId = await startRun(fixture.stack, 'invoicing', { period: '2026-10', where: ownCustomers(p), taxRate: '0.2', batchSize: 2, ...extra });
    return { runId, run: await waitForRun(fixture.stack, runId) };
  };

  const storedPdf = async (invoice: InvoiceRow) => buffer((await store().open(invoice.pdfKey!)).stream);

  it('bills a month: exact amounts and lines, one numbered invoice, PDF and email per customer', async () => {
    const p = uniqueId('inv');
    await seedOctober(p);
    const { runId, run } = await runMonth(p, { notify: { webhook: hooks.url, on: ['success'] } });
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    // Two customers to bill, through four steps each.
    assert.deepEqual({ ...run.result!.counts }, { processed: 8, succeeded: 8, failed: 0, skipped: 0, total: 8 });
    assert.deepEqual(Object.fromEntries(Object.entries(run.result!.steps!).map(([name, s]) => [name, [s.status, s.counts?.succeeded]])), {
      usage: ['success', 2],
      invoices: ['success', 2],
      pdfs: ['success', 2],
      emails: ['success', 2],
    });
    // The PDFs are the invoices' (invoices.pdf_key), not files of the run to download.
    assert.deepEqual(run.result!.outputs, []);

    const invoices = await invoicesOf(pool(), p, '2026-10');
    assert.deepEqual([...invoices.keys()], ['eur', 'jpy'], 'no invoice for a customer without usage in the month');
    const eur = invoices.get('eur')!;
    const jpy = invoices.get('jpy')!;
    // 4734 × 0.0125 = 59.175 → 59.18; 10.5 × 0.333 = 3.4965 → 3.50; tax 20 % of 62.68 = 12.536 → 12.54.
    assert.deepEqual(
      eur.lines.map((l) => [l.metric, l.quantity, l.unitPrice, l.amount, l.events]),
      [
        ['api_calls', '4734.000000', '0.012500', '5918', 3],
        ['storage_gb', '10.500000', '0.333000', '350', 1],
      ],
    );
    assert.deepEqual([eur.currency, eur.subtotal, eur.tax, eur.total, eur.status, eur.emailState], ['EUR', '6268', '1254', '7522', 'sent', 'sent']);
    // 7 × 123.5 = 864.5 → 865 yen; tax 173.
    assert.deepEqual([jpy.currency, jpy.subtotal, jpy.tax, jpy.total], ['JPY', '865', '173', '1038']);
    for (const invoice of [eur, jpy]) assert.match(invoice.number!, new RegExp(`^INV-${year}-\\d{6}$`));
    assert.equal(Number(jpy.number!.slice(-6)), Number(eur.number!.slice(-6)) + 1, 'numbered in customer order, consecutively');

    // The PDF in the object store (MinIO here) shows the invoice.
    assert.equal(eur.pdfKey, `invoices/2026-10/${eur.number}.pdf`);
    const pdf = await storedPdf(eur);
    assert.equal(createHash('sha256').update(pdf).digest('hex'), eur.pdfSha256);
    const text = await pdfText(pdf);
    for (const expected of [eur.number!, 'Zoë Café GmbH', 'Hauptstraße 5', 'October 2026', 'Batchflow Demo Ltd']) assert.ok(text.includes(expected), `${expected} in:\n${text}`);
    assert.match(text, /api_calls\s+4,734\s+0\.0125 EUR\s+59\.18 EUR/);
    assert.match(text, /storage_gb\s+10\.5\s+0\.333 EUR\s+3\.50 EUR/);
    assert.match(text, /Total\s+75\.22 EUR/);

    // One email, with that very PDF attached and a Message-ID derived from the invoice.
    const mails = await waitForMail(`to:"${p}.eur@example.com"`, 1);
    assert.equal(mails.length, 1);
    const mail = await readMail(mails[0]!.ID);
    assert.equal(mail.Subject, `Invoice ${eur.number} for October 2026`);
    assert.match(mail.Text, /Amount due: 75\.22 EUR, by \d{4}-\d{2}-\d{2}\./);
    assert.equal(`<${mail.MessageID}>`, eur.messageId);
    assert.match(eur.messageId!, new RegExp(`^<${eur.number}\\.${eur.id}@batchflow\\.localhost>$`));
    assert.equal(mail.Attachments.length, 1);
    assert.equal(mail.Attachments[0]!.FileName, `${eur.number}.pdf`);
    assert.ok((await mailAttachment(mail.ID, mail.Attachments[0]!.PartID)).equals(pdf));

    // Signed invoice events and the run's end reached the webhook; the delivery log says so.
    const mine = hooks.received.filter((r) => r.body.data.runId === runId);
    assert.deepEqual(mine.map((r) => `${r.type} ${String(r.body.data.invoice ?? r.body.data.status)}`).sort(), [
      `invoice.issued ${eur.number}`,
      `invoice.issued ${jpy.number}`,
      `invoice.sent ${eur.number}`,
      `invoice.sent ${jpy.number}`,
      'run.success success',
    ]);
    assert.ok(mine.every((r) => r.verified), 'every signature verifies');
    const sent = mine.find((r) => r.type === 'invoice.sent' && r.body.data.invoice === eur.number)!;
    assert.deepEqual(sent.body.data, { invoice: eur.number, period: '2026-10', customer: `${p}-eur`, currency: 'EUR', subtotalMinor: '6268', taxMinor: '1254', totalMinor: '7522', issueDate: sent.body.data.issueDate, dueDate: sent.body.data.dueDate, messageId: eur.messageId, runId });
    const log = (await fixture.stack.app.inject({ method: 'GET', url: `/runs/${runId}/notifications` })).json<{ counts: object; deliveries: { event: string; status: string; target: string; attempts: number }[] }>();
    assert.deepEqual(log.counts, { pending: 0, delivered: 5, failed: 0 });
    assert.ok(log.deliveries.every((d) => d.status === 'delivered' && d.attempts === 1 && d.target === hooks.url.replace(/\?.*/, '')), 'the token in the URL is not shown');
  });

  it('running the month again creates no second invoice, number, PDF or email, and changes no issued invoice', async () => {
    const p = uniqueId('again');
    await seedOctober(p);
    const first = await runMonth(p);
    assert.equal(first.run.status, 'success');
    const before = await invoicesOf(pool(), p, '2026-10');
    const counter = (await numbersOfYear(pool(), year)).counter;
    // Usage that arrives after the invoice was issued is not added to it.
    await seedUsage(pool(), p, [{ customer: 'eur', metric: 'api_calls', quantity: '50000', unitPrice: '0.0125', at: '2026-10-30T00:00:00Z' }]);

    const second = await runMonth(p);
    assert.equal(second.run.status, 'success', JSON.stringify(second.run.result?.error));
    assert.deepEqual({ ...second.run.result!.counts }, { processed: 8, succeeded: 0, failed: 0, skipped: 8, total: 8 });
    assert.deepEqual(await invoicesOf(pool(), p, '2026-10'), before, 'the same invoices, numbers, PDFs and email states');
    assert.equal((await numbersOfYear(pool(), year)).counter, counter, 'no number given out');
    for (const key of ['eur', 'jpy']) assert.equal((await mailTo(`${p}.${key}@example.com`)).length, 1);
  });

  it('a customer without an email and an email the server refuses are row errors; the others are sent; the run is partial; a rerun sends what is missing', async () => {
    const p = uniqueId('partial');
    await seedCustomers(pool(), p, [{ key: 'ok' }, { key: 'nomail', email: null }, { key: 'refused', email: `${p}@refused.invalid` }]);
    await seedUsage(pool(), p, ['ok', 'nomail', 'refused'].map((customer) => ({ customer, metric: 'seats', quantity: '2', unitPrice: '10', at: '2026-10-05T00:00:00Z' })));
    const { runId, run } = await runMonth(p);
    assert.equal(run.status, 'partial');
    assert.deepEqual({ ...run.result!.counts }, { processed: 12, succeeded: 10, failed: 2, skipped: 0, total: 12 });
    assert.equal(run.result!.steps!.emails!.status, 'partial');
    // The customers are in the errors' raw input (GET /runs/:id/errors), not in the result's sample.
    const errors = (await rowErrors(fixture.stack, runId)).map((e) => [e.code, (e.raw as { customer: string }).customer]).sort();
    assert.deepEqual(errors, [
      ['EMAIL_REFUSED', `${p}-refused`],
      ['NO_EMAIL_ADDRESS', `${p}-nomail`],
    ]);
    const invoices = await invoicesOf(pool(), p, '2026-10');
    assert.deepEqual(
      [...invoices].map(([key, i]) => [key, i.status, i.emailState, !!i.number, !!i.pdfKey]),
      [
        ['ok', 'sent', 'sent', true, true],
        ['nomail', 'failed', 'failed', true, true],
        ['refused', 'failed', 'failed', true, true],
      ],
    );
    assert.equal((await mailTo(`${p}.ok@example.com`)).length, 1);

    // The customer gets an address: running the month again sends that invoice, and only that one.
    await pool().query(`UPDATE customers SET email = $1 WHERE external_id = $2`, [`${p}.nomail@example.com`, `${p}-nomail`]);
    const { run: rerun } = await runMonth(p);
    assert.equal(rerun.status, 'partial', 'the refused address is still refused');
    assert.equal(rerun.result!.steps!.emails!.counts!.succeeded, 1);
    assert.equal((await invoicesOf(pool(), p, '2026-10')).get('nomail')!.status, 'sent');
    assert.equal((await mailTo(`${p}.nomail@example.com`)).length, 1);
    assert.equal((await mailTo(`${p}.ok@example.com`)).length, 1);
  });

  it('an email whose sending was interrupted is reported (unconfirmedEmails: report) or sent again with the same Message-ID, visibly (the default)', async () => {
    const p = uniqueId('unconfirmed');
    await seedCustomers(pool(), p, [{ key: 'a' }, { key: 'b' }]);
    await seedUsage(pool(), p, ['a', 'b'].map((customer) => ({ customer, metric: 'seats', quantity: '1', unitPrice: '9', at: '2026-10-09T00:00:00Z' })));
    assert.equal((await runMonth(p)).run.status, 'success');
    // What a worker killed after the SMTP server took the message, and before the database heard of it, leaves behind.
    await pool().query(`UPDATE invoices SET email_state = 'sending', status = 'issued' WHERE customer_id = (SELECT id FROM customers WHERE external_id = $1) AND period = '2026-10'`, [`${p}-a`]);
    const a = (await invoicesOf(pool(), p, '2026-10')).get('a')!;

    const reported = (await runMonth(p, { unconfirmedEmails: 'report' })).run;
    assert.equal(reported.status, 'partial');
    assert.equal(reported.result!.errorSample[0]!.code, 'EMAIL_UNCONFIRMED');
    assert.ok(reported.result!.errorSample[0]!.message.includes(a.messageId!), 'the message names the Message-ID to look for');
    assert.equal((await mailTo(`${p}.a@example.com`)).length, 1, 'not sent again');
    assert.equal((await invoicesOf(pool(), p, '2026-10')).get('a')!.emailState, 'sending');

    const resent = (await runMonth(p)).run;
    assert.equal(resent.status, 'success');
    assert.equal(resent.result!.steps!.emails!.counts!.succeeded, 1);
    assert.ok(resent.result!.warnings.some((w) => w.includes(`invoice ${a.number} was sent again`)), JSON.stringify(resent.result!.warnings));
    const copies = await mailTo(`${p}.a@example.com`);
    assert.deepEqual(copies.map((m) => `<${m.MessageID}>`), [a.messageId, a.messageId], 'the copy carries the same Message-ID');
    const after = (await invoicesOf(pool(), p, '2026-10')).get('a')!;
    assert.deepEqual([after.status, after.emailState, after.emailAttempts], ['sent', 'sent', 2]);
    assert.equal((await mailTo(`${p}.b@example.com`)).length, 1);
  });

  /** Issues and renders a test's invoices by calling the activities directly, stopping before the emails. */
  async function billUpToEmails(p: string, period: string, keys: string[]) {
    await seedCustomers(pool(), p, keys.map((key) => ({ key })));
    await seedUsage(pool(), p, keys.map((customer) => ({ customer, metric: 'seats', quantity: '1', unitPrice: '5', at: `${period}-10T00:00:00Z` })));
    const config = fixture.stack.config;
    const deps = { pool: pool(), datasets: loadDatasets(config.datasetDirs), autocommitPool: createPool(requireDatabaseUrl(config), 2), store: store(), sliceMs: 60_000, parallelBatches: 2, seller: config.seller, emailFrom: config.email.from };
    const params = { ...invoicingParamsSchema.parse({ period, where: ownCustomers(p), batchSize: 5 }), period };
    const plan: RunPlan = await new MockActivityEnvironment().run(() => createInvoicingActivities({ ...deps, mailer: createMailer(config.email) }).planInvoicing({ run: { id: 'plan', execution: uniqueId('plan') }, params, asOf: new Date().toISOString() }));
    // A plan whose email step has nothing to do: usage, invoices and PDFs only.
    const firstSteps = createInvoicingActivities({ ...deps, mailer: createMailer({ ...config.email, smtpUrl: undefined }) });
    await new MockActivityEnvironment().run(() => firstSteps.invoicingSlice({ run: { id: 'first-steps', execution: uniqueId('first-steps') }, params, plan: { ...plan, bounds: [...plan.bounds.slice(0, 3), 0] } }));
    const atEmails: Checkpoint<KeysetPosition> = { seq: 0, position: { step: 3, lastId: 0 }, counts: { processed: 0, succeeded: 0, failed: 0, skipped: 0 }, done: false, warnings: [] };
    /** Runs the email step with this mailer, in a new MockActivityEnvironment each call (an attempt). */
    const sendWith = (mailer: Mailer, runId: string) => new MockActivityEnvironment().run(() => createInvoicingActivities({ ...deps, mailer }).invoicingSlice({ run: { id: runId, execution: runId }, params, plan, cursor: atEmails }));
    return { sendWith, close: () => deps.autocommitPool.end() };
  }

  it('two attempts of the email step running at once (a retry beside a stale attempt) send each invoice once', async () => {
    const p = uniqueId('twice');
    const keys = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const { sendWith, close } = await billUpToEmails(p, '2026-08', keys);
    const mailer = createMailer(fixture.stack.config.email);
    const runId = uniqueId('emails');
    try {
      const attempts = await Promise.allSettled([sendWith(mailer, runId), sendWith(mailer, runId)]);
      for (const a of attempts) if (a.status === 'rejected') assert.match(String(a.reason), /moved on to batch \d+ in another attempt/);
      assert.ok(attempts.some((a) => a.status === 'fulfilled'), 'one attempt finishes the step');
    } finally {
      mailer.close();
      await close();
    }
    for (const key of keys) assert.equal((await mailTo(`${p}.${key}@example.com`)).length, 1, key);
    assert.ok([...(await invoicesOf(pool(), p, '2026-08')).values()].every((i) => i.emailState === 'sent' && i.emailAttempts === 1));
  });

  it('without SMTP_URL the email step fails the run, saying so, and leaves the invoices to send', async () => {
    const p = uniqueId('nosmtp');
    const { sendWith, close } = await billUpToEmails(p, '2026-07', ['a']);
    try {
      await assert.rejects(sendWith(createMailer({ ...fixture.stack.config.email, smtpUrl: undefined }), uniqueId('emails')), (err: Error & { type?: string }) => {
        assert.equal(err.type, 'NOT_CONFIGURED');
        assert.match(err.message, /set SMTP_URL/);
        return true;
      });
    } finally {
      await close();
    }
    const invoice = (await invoicesOf(pool(), p, '2026-07')).get('a')!;
    assert.deepEqual([invoice.status, invoice.emailState, !!invoice.pdfKey], ['issued', 'pending', true]);
  });

  it('numbers run 1, 2, 3, … per year with no gap and no repeat, and the counter holds the last', async () => {
    const { numbers, counter } = await numbersOfYear(pool(), year);
    assert.ok(numbers.length >= 4, 'the tests above issued invoices');
    assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => i + 1));
    assert.equal(counter, numbers.length);
  });

  it('a dry run shows the totals per currency and changes nothing; a run that needs confirmation waits, then bills', async () => {
    const p = uniqueId('dry');
    await seedOctober(p);
    const { run } = await runMonth(p, { dryRun: true });
    assert.equal(run.status, 'success');
    assert.equal(run.result!.preview!.matched, 2);
    assert.deepEqual(run.result!.preview!.sample, [
      { currency: 'EUR', invoices: 1, subtotal: '62.68 EUR', tax: '12.54 EUR', total: '75.22 EUR' },
      { currency: 'JPY', invoices: 1, subtotal: '865 JPY', tax: '173 JPY', total: '1,038 JPY' },
    ]);
    assert.ok(Object.values(run.result!.steps!).every((s) => s.status === 'skipped'));
    assert.equal((await invoicesOf(pool(), p, '2026-10')).size, 0);

    const runId = await startRun(fixture.stack, 'invoicing', { period: '2026-10', where: ownCustomers(p), requiresConfirmation: true });
    const waiting = await waitForRun(fixture.stack, runId, (r) => r.progress?.step === 'awaiting_approval');
    assert.equal(waiting.progress!.preview!.matched, 2);
    assert.equal((await invoicesOf(pool(), p, '2026-10')).size, 0);
    assert.equal((await fixture.stack.app.inject({ method: 'POST', url: `/runs/${runId}/approve`, payload: {} })).statusCode, 202);
    assert.equal((await waitForRun(fixture.stack, runId)).status, 'success');
    assert.equal((await invoicesOf(pool(), p, '2026-10')).size, 2);
  });

  it('without a period, a scheduled run bills the month before its scheduled time', async () => {
    const p = uniqueId('sched');
    await seedCustomers(pool(), p, [{ key: 'a' }]);
    await seedUsage(pool(), p, [{ customer: 'a', metric: 'seats', quantity: '3', unitPrice: '5', at: '2025-02-14T00:00:00Z' }]);
    const scheduleId = uniqueId('monthly-invoicing');
    const schedule = await fixture.stack.client.schedule.create({
      scheduleId,
      spec: { cronExpressions: ['0 3 1 * *'] },
      action: { type: 'startWorkflow', workflowType: 'invoicingWorkflow', workflowId: scheduleId, taskQueue: fixture.stack.config.temporal.taskQueue, args: [{ params: { where: ownCustomers(p) } }] },
      state: { paused: true },
    });
    try {
      // The run for 1 March 2025, 03:00 UTC, started now: it bills February 2025.
      await schedule.backfill({ start: new Date('2025-03-01T02:59:00Z'), end: new Date('2025-03-01T03:01:00Z'), overlap: ScheduleOverlapPolicy.ALLOW_ALL });
      const deadline = Date.now() + 60_000;
      let invoices = await invoicesOf(pool(), p, '2025-02');
      while (invoices.get('a')?.status !== 'sent' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        invoices = await invoicesOf(pool(), p, '2025-02');
      }
      assert.equal(invoices.get('a')?.status, 'sent');
      assert.equal(invoices.get('a')?.total, '1500');
    } finally {
      await schedule.delete();
    }
  });

  it('keeps customer and usage rows out of workflow history', async () => {
    const p = uniqueId('marker');
    const marker = `MARKER-${p}`;
    await seedCustomers(pool(), p, [{ key: 'm', name: `${marker} name`, address_line1: `${marker} street`, email: `${marker.toLowerCase()}@example.com` }]);
    await seedUsage(pool(), p, [{ customer: 'm', metric: `${marker}_metric`, quantity: '1', unitPrice: '1', at: '2026-10-03T00:00:00Z' }]);
    const { runId, run } = await runMonth(p, { notify: { webhook: hooks.url, email: ['ops@example.com'] } });
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error));
    assert.equal((await invoicesOf(pool(), p, '2026-10')).get('m')?.status, 'sent');
    const history = await historyText(fixture.stack.client, runId);
    assert.ok(history.includes('invoicingSlice'), 'the history was read');
    assert.ok(!history.toLowerCase().includes(marker.toLowerCase()), 'no customer or usage value in the history');
  });
});
