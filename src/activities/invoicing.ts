import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { Dataset, DatasetRegistry } from '../datasets';
import { invoiceQueries, type DraftInvoice, type InvoiceEvents, type InvoiceForEmail, type InvoiceForPdf, type UsageLine } from '../db/invoices';
import type { Pool, PoolClient } from '../db/pool';
import { rowQueries, type RowSelection } from '../db/row-queries';
import { eachLimited } from '../each-limited';
import { ErrorCode, permanentFailure } from '../errors';
import type { Checkpoint, KeysetPosition } from '../jobs/checkpoint';
import { checkInvoicingParams, CUSTOMERS, invoicingSteps, periodRange, type InvoicingParams, type InvoicingStep } from '../jobs/invoicing';
import type { RowError, RunPlan, RunRef } from '../jobs/run';
import { invoiceEmail } from '../invoicing/email';
import { formatMoney, invoiceTotals } from '../invoicing/money';
import { renderInvoicePdf, type InvoiceDocument, type Party } from '../invoicing/pdf';
import { fromDomain, isRefusal, MAIL_CONNECTIONS, type Mailer } from '../notifications/mailer';
import type { ObjectStore } from '../storage';
import type { Applied } from './batch-runner';
import { requireDataset, requireValidParams } from './params';
import { planRun, runRowSlice, type RowBatch, type RowTarget } from './row-slices';

/** Invoicing params with the month settled (the workflow fills in the default). */
export type SettledInvoicingParams = InvoicingParams & { period: string };

export interface InvoicingSliceInput {
  run: RunRef;
  params: SettledInvoicingParams;
  plan: RunPlan;
  cursor?: Checkpoint<KeysetPosition>;
}

export interface InvoicingDeps {
  pool: Pool;
  /**
   * Connections for statements that commit on their own while a batch's transaction holds one of
   * `pool`'s (an email's sending and sent states): drawn from `pool`, they could wait forever for
   * connections that batches waiting on them hold.
   */
  autocommitPool: Pool;
  datasets: DatasetRegistry;
  store: ObjectStore;
  mailer: Mailer;
  sliceMs: number;
  parallelBatches: number;
  seller: Party;
  emailFrom: string;
}

/** Where an invoice's PDF lives in the object store (under store://invoices/<period>/): one key per invoice, whatever the reruns. */
const pdfKey = (period: string, number: string) => `invoices/${period}/${number}.pdf`;

const selectionOf = (customers: Dataset, params: SettledInvoicingParams, asOf: string): RowSelection => ({ dataset: customers, where: params.where, asOf: new Date(asOf) });

/** Items grouped by a key, groups in order of first appearance (Map.groupBy needs Node 21). */
function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** An invoice as stored, as the PDF renderer takes it. */
const pdfDocument = (invoice: InvoiceForPdf): InvoiceDocument => ({
  ...invoice,
  subtotalMinor: BigInt(invoice.subtotalMinor),
  taxMinor: BigInt(invoice.taxMinor),
  totalMinor: BigInt(invoice.totalMinor),
  lines: invoice.lines.map((l) => ({ ...l, amountMinor: BigInt(l.amountMinor) })),
});

/** Each customer's usage lines, priced and totalled by the rounding rule of money.ts. */
function draftsOf(lines: readonly UsageLine[], taxRate: string): DraftInvoice[] {
  return [...groupBy(lines, (l) => l.customerId).values()].map((own) => {
    const { currency, customerId } = own[0]!;
    const totals = invoiceTotals(own, currency, taxRate);
    return {
      customerId,
      currency,
      taxRate,
      subtotal: totals.subtotal,
      tax: totals.tax,
      total: totals.total,
      lines: own.map((l, i) => ({ metric: l.metric, quantity: l.quantity, unitPrice: l.unitPrice, amount: totals.lines[i]!, events: l.events })),
    };
  });
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** What one step did with one batch's customers, as the runner counts it. */
class StepTally {
  succeeded = 0;
  skipped = 0;
  readonly errors: RowError[] = [];
  readonly warnings: string[] = [];

  fail(customerId: number, code: ErrorCode, message: string, raw: { invoice?: string; customer?: string; reason?: string }) {
    this.errors.push({ row: customerId, line: null, field: null, code, message, raw });
  }

  applied(): Applied {
    return { succeeded: this.succeeded, skipped: this.skipped, errors: this.errors, rejectedRows: this.errors.length, ...(this.warnings.length > 0 && { warnings: this.warnings }) };
  }
}

export function createInvoicingActivities(deps: InvoicingDeps) {
  const { pool, autocommitPool, store, mailer } = deps;
  const domain = fromDomain(deps.emailFrom);

  /** The customers dataset, once the params hold against the declared datasets (a run may outlive a change of declarations). */
  const customersFor = (params: SettledInvoicingParams): Dataset => {
    requireValidParams(checkInvoicingParams(params, deps.datasets));
    return requireDataset(deps.datasets, CUSTOMERS);
  };

  /** Step 1: each customer's usage in the month becomes a draft invoice (amounts and lines). */
  async function computeUsage(client: PoolClient, ids: number[], params: SettledInvoicingParams): Promise<Applied> {
    const lines = await invoiceQueries.usageLines(client, ids, params.period);
    const drafts = draftsOf(lines, params.taxRate);
    await invoiceQueries.saveDrafts(client, ids, params.period, drafts);
    return { succeeded: drafts.length, skipped: await invoiceQueries.countIssued(client, ids, params.period), errors: [], rejectedRows: 0 };
  }

  /** Step 2: drafts are issued with the next numbers of the year, in this batch's transaction. */
  async function issueInvoices(client: PoolClient, ids: number[], params: SettledInvoicingParams, plan: RunPlan, events: InvoiceEvents): Promise<Applied> {
    const issued = await invoiceQueries.issue(client, ids, { period: params.period, issueDate: plan.asOf.slice(0, 10), dueDays: params.dueDays, seller: deps.seller, events });
    return { succeeded: issued, skipped: (await invoiceQueries.countIssued(client, ids, params.period)) - issued, errors: [], rejectedRows: 0 };
  }

  /** Streams a rendered invoice to its key, hashing it on the way. */
  async function storePdf(invoice: InvoiceForPdf, doc: PDFKit.PDFDocument): Promise<{ id: number; key: string; size: number; sha256: string }> {
    const hash = createHash('sha256');
    const tap = new PassThrough();
    tap.on('data', (chunk: Buffer) => hash.update(chunk));
    const key = pdfKey(invoice.period, invoice.number);
    const { size } = await store.put(key, doc.pipe(tap));
    return { id: invoice.id, key, size, sha256: hash.digest('hex') };
  }

  /**
   * Step 3: each issued invoice without a PDF gets one. A PDF stored by an attempt that died before
   * its batch committed is rendered again to the same key with the same bytes.
   */
  async function renderPdfs(client: PoolClient, ids: number[], params: SettledInvoicingParams, runId: string): Promise<Applied> {
    const tally = new StepTally();
    const rendered: Awaited<ReturnType<typeof storePdf>>[] = [];
    await eachLimited(await invoiceQueries.forPdf(client, ids, params.period), 2, async (invoice) => {
      if (invoice.pdfKey) {
        tally[invoice.renderedByRun === runId ? 'succeeded' : 'skipped'] += 1;
        return;
      }
      let doc: PDFKit.PDFDocument;
      try {
        doc = await renderInvoicePdf(pdfDocument(invoice));
      } catch (err) {
        tally.fail(invoice.customerId, ErrorCode.PdfFailed, `invoice ${invoice.number}: the PDF could not be rendered: ${(err as Error).message}`, { invoice: invoice.number, customer: invoice.billTo.customerId });
        return;
      }
      // The object store failing is transient: the batch is retried.
      rendered.push(await storePdf(invoice, doc));
      tally.succeeded += 1;
    });
    await invoiceQueries.recordPdfs(client, runId, rendered);
    return tally.applied();
  }

  /**
   * Sends one invoice. "sending" is committed before the SMTP call and "sent" right after the
   * server accepts the message: an invoice found "sending" was interrupted between the two, may
   * or may not have reached the customer, and is sent again with the same Message-ID.
   */
  async function sendInvoice(invoice: InvoiceForEmail, to: string, events: InvoiceEvents): Promise<{ resent: boolean }> {
    const pdf = await buffer((await store.open(invoice.pdfKey!)).stream);
    const email = invoiceEmail(invoice, to, pdf, { sellerName: deps.seller.name, domain });
    await invoiceQueries.markSending(autocommitPool, invoice.id, to, email.messageId);
    await mailer.send(email);
    await invoiceQueries.markSent(autocommitPool, invoice.id, events);
    return { resent: invoice.emailState === 'sending' };
  }

  /** Step 4: each invoice with a PDF that was not sent yet is emailed to its customer. */
  async function sendEmails(client: PoolClient, ids: number[], params: SettledInvoicingParams, runId: string, events: InvoiceEvents): Promise<Applied> {
    // Not a problem of any one invoice: the run fails, saying what to set; issued invoices and their
    // PDFs stay, and running the month again once it is set sends them.
    if (!mailer.configured) throw permanentFailure(ErrorCode.NotConfigured, 'invoices cannot be emailed: no SMTP server is configured (set SMTP_URL)');
    const tally = new StepTally();
    // Locked until the batch commits: a second attempt of this batch waits, then sees what was sent.
    const invoices = await invoiceQueries.lockForEmail(client, ids, params.period);
    await eachLimited(invoices, MAIL_CONNECTIONS, async (invoice) => {
      const raw = { invoice: invoice.number, customer: invoice.customerExternalId };
      if (invoice.emailState === 'sent') {
        tally[invoice.sentByRun === runId ? 'succeeded' : 'skipped'] += 1;
      } else if (!invoice.pdfKey) {
        // Its PDF failed (and said so): nothing to attach.
        tally.skipped += 1;
      } else if (invoice.emailState === 'sending' && params.unconfirmedEmails === 'report') {
        tally.fail(
          invoice.customerId,
          ErrorCode.EmailUnconfirmed,
          `invoice ${invoice.number}: an earlier attempt stopped while sending it, so it may have arrived (Message-ID ${invoice.messageId}); check the mail server's log, or run the month again with unconfirmedEmails: "resend"`,
          raw,
        );
      } else if (!invoice.email) {
        await invoiceQueries.markFailed(autocommitPool, invoice.id, 'the customer has no email address');
        // The customer by its id (row) and external id (raw): messages reach workflow history.
        tally.fail(invoice.customerId, ErrorCode.NoEmailAddress, `invoice ${invoice.number}: the customer has no email address`, raw);
      } else {
        try {
          const { resent } = await sendInvoice(invoice, invoice.email, events);
          tally.succeeded += 1;
          if (resent) tally.warnings.push(`invoice ${invoice.number} was sent again after an attempt whose outcome is unknown (the worker stopped between sending and recording it): the customer may hold two copies with the same Message-ID`);
        } catch (err) {
          if (!isRefusal(err)) throw err;
          await invoiceQueries.markFailed(autocommitPool, invoice.id, err.message);
          // The server's answer may quote the address: it goes with the raw input, out of workflow history.
          tally.fail(invoice.customerId, ErrorCode.EmailRefused, `invoice ${invoice.number}: the mail server refused it (SMTP ${err.responseCode})`, { ...raw, reason: err.message });
        }
      }
    });
    return tally.applied();
  }

  return {
    /** Counts the customers to bill in the month, fixes the highest id the run may reach, and (for previews) the totals per currency. */
    async planInvoicing({ run, params, asOf }: { run: RunRef; params: SettledInvoicingParams; asOf: string }): Promise<RunPlan> {
      const selection = selectionOf(customersFor(params), params, asOf);
      return planRun(pool, run, async () => {
        const range = periodRange(params.period);
        const { matched, maxId } = await invoiceQueries.countBillable(pool, selection, range);
        const orphans = await invoiceQueries.orphanUsage(pool, range);
        const sample = params.dryRun || params.requiresConfirmation ? await currencyTotals(pool, selection, maxId, params) : [];
        return {
          plan: {
            asOf,
            preview: { matched },
            bounds: invoicingSteps.map(() => maxId),
            total: matched * invoicingSteps.length,
            warnings: orphans.events > 0 ? [`usage in ${params.period} of ${plural(orphans.customers, 'customer')} missing from the customers dataset was not billed (${plural(orphans.events, 'event')})`] : [],
          },
          samples: { sample },
        };
      });
    },

    /** Runs the four steps batch after batch from the run's checkpoint, for about sliceMs. */
    async invoicingSlice({ run, params, plan, cursor }: InvoicingSliceInput): Promise<Checkpoint<KeysetPosition>> {
      // Invoices and their events name the run as callers know it; its checkpoint and deliveries are its execution's.
      const runId = run.id;
      const selection = selectionOf(customersFor(params), params, plan.asOf);
      const events: InvoiceEvents = { run, webhook: params.notify?.webhook };
      // Issuing locks the year's counter until its batch commits: those batches go one at a time.
      const targets: RowTarget[] = invoicingSteps.map((name, i) => ({ name, selection, upTo: plan.bounds[i]!, batchSize: params.batchSize, serial: name === 'invoices' }));
      return runRowSlice({
        pool,
        run,
        sliceMs: deps.sliceMs,
        policy: params,
        cursor,
        targets,
        parallelBatches: deps.parallelBatches,
        async apply(client: PoolClient, batch: RowBatch) {
          const ids = await rowQueries.matchingIds(client, selection, batch.rows);
          if (ids.length === 0) return new StepTally().applied();
          switch (batch.target.name as InvoicingStep) {
            case 'usage':
              return computeUsage(client, ids, params);
            case 'invoices':
              return issueInvoices(client, ids, params, plan, events);
            case 'pdfs':
              return renderPdfs(client, ids, params, runId);
            case 'emails':
              return sendEmails(client, ids, params, runId, events);
          }
        },
      });
    },
  };
}

/** The totals a run would invoice, per currency (counts and sums only), for its preview. */
async function currencyTotals(pool: Pool, selection: RowSelection, maxId: number, params: SettledInvoicingParams): Promise<Record<string, unknown>[]> {
  const ids = await rowQueries.matchingIds(pool, selection, { after: 0, upTo: maxId });
  const drafts = draftsOf(await invoiceQueries.usageLines(pool, ids, params.period), params.taxRate);
  const byCurrency = groupBy(drafts, (d) => d.currency);
  return [...byCurrency].map(([currency, own]) => {
    const sum = (pick: (d: DraftInvoice) => bigint) => formatMoney(own.reduce((n, d) => n + pick(d), 0n), currency);
    return { currency, invoices: own.length, subtotal: sum((d) => d.subtotal), tax: sum((d) => d.tax), total: sum((d) => d.total) };
  });
}
