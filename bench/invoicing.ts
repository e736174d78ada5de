/**
 * Workload `invoicing-10k`: a month of 10,000 customers with 30 usage events each, billed end to
 * end by the invoicing workflow (usage → numbered invoices → PDFs in the object store → emails to
 * the bench's Mailpit), against a plain script doing the same work in one process with the same
 * libraries and none of the durability: one aggregate query, invoices and lines inserted in
 * chunks, each PDF rendered, written and emailed.
 */
import { buffer } from 'node:stream/consumers';
import { invoiceEmail } from '../src/invoicing/email';
import { invoiceTotals } from '../src/invoicing/money';
import { renderInvoicePdf } from '../src/invoicing/pdf';
import type { RunResult } from '../src/jobs/run';
import { createMailer, fromDomain } from '../src/notifications/mailer';
import { log, type BenchContext, type WorkloadResult } from './context';

const CUSTOMERS = Number(process.env.BENCH_INVOICING_CUSTOMERS ?? 10_000);
const EVENTS = 30;
const PERIOD = '2026-10';
const SELLER = { name: 'Bench Ltd', address: ['1 Bench Street', '75001 Paris'] };
const FROM = 'Bench <billing@bench.localhost>';
// Emails (with their PDFs) in flight at once in the reference: as many as the mailer has connections.
const IN_FLIGHT = 4;

async function seed(ctx: BenchContext): Promise<void> {
  log(`seeding ${CUSTOMERS.toLocaleString()} customers × ${EVENTS} usage events`);
  await ctx.pool.query('TRUNCATE customers, usage_events, invoices, invoice_lines, invoice_counters, notification_deliveries RESTART IDENTITY CASCADE');
  await ctx.pool.query(
    `INSERT INTO customers (external_id, name, email, currency, address_line1, postal_code, city, country)
     SELECT 'c' || g, 'Customer ' || g || ' Ltd', 'c' || g || '@bench.test', CASE WHEN g % 10 = 0 THEN 'USD' ELSE 'EUR' END, g || ' Long Street', '75001', 'Paris', 'France'
     FROM generate_series(1, $1::int) g`,
    [CUSTOMERS],
  );
  await ctx.pool.query(
    `INSERT INTO usage_events (event_id, customer, metric, quantity, unit_price, occurred_at)
     SELECT 'c' || g || '-' || e, 'c' || g, (ARRAY['api_calls', 'storage_gb_days', 'seats'])[1 + e % 3], 1 + (g * 31 + e * 17) % 5000, (ARRAY[0.0125, 0.0045, 12])[1 + e % 3],
            TIMESTAMPTZ '${PERIOD}-01T00:00:00Z' + (e % 31) * interval '1 day'
     FROM generate_series(1, $1::int) g, generate_series(1, $2::int) e`,
    [CUSTOMERS, EVENTS],
  );
  await ctx.pool.query('ANALYZE customers; ANALYZE usage_events');
}

/** The same month by a plain script: no checkpoints, no idempotency, no Temporal. */
async function reference(ctx: BenchContext): Promise<void> {
  const { store } = ctx;
  const mailer = createMailer({ smtpUrl: ctx.smtpUrl, from: FROM });
  try {
    const { rows } = await ctx.pool.query<{ id: number; name: string; email: string; currency: string; lines: { metric: string; quantity: string; unitPrice: string }[] }>(
      `SELECT c.id, c.name, c.email, c.currency, json_agg(json_build_object('metric', u.metric, 'quantity', u.quantity::text, 'unitPrice', u.unit_price::text) ORDER BY u.metric, u.unit_price) AS lines
       FROM customers c JOIN (SELECT customer, metric, unit_price, sum(quantity) AS quantity FROM usage_events
                              WHERE occurred_at >= $1::timestamptz AND occurred_at < $1::timestamptz + interval '1 month' GROUP BY 1, 2, 3) u ON u.customer = c.external_id
       GROUP BY c.id ORDER BY c.id`,
      [`${PERIOD}-01T00:00:00Z`],
    );
    await ctx.pool.query('CREATE TEMP TABLE IF NOT EXISTS ref_invoices (number text, customer_id bigint, total bigint); CREATE TEMP TABLE IF NOT EXISTS ref_lines (number text, metric text, amount bigint)');
    const invoices = rows.map((c, i) => ({ ...c, number: `REF-${String(i + 1).padStart(6, '0')}`, totals: invoiceTotals(c.lines, c.currency, '0.2') }));
    for (let i = 0; i < invoices.length; i += 1_000) {
      const chunk = invoices.slice(i, i + 1_000);
      await ctx.pool.query('INSERT INTO ref_invoices SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])', [chunk.map((c) => c.number), chunk.map((c) => c.id), chunk.map((c) => c.totals.total.toString())]);
      const lines = chunk.flatMap((c) => c.lines.map((l, j) => [c.number, l.metric, c.totals.lines[j]!.toString()]));
      await ctx.pool.query('INSERT INTO ref_lines SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])', [lines.map((l) => l[0]), lines.map((l) => l[1]), lines.map((l) => l[2])]);
    }
    let next = 0;
    const lane = async () => {
      while (next < invoices.length) {
        const c = invoices[next++]!;
        const doc = {
          number: c.number,
          period: PERIOD,
          issueDate: '2026-11-01',
          dueDate: '2026-12-01',
          currency: c.currency,
          taxRate: '0.2',
          seller: SELLER,
          billTo: { name: c.name, address: ['1 Long Street', '75001 Paris', 'France'], customerId: String(c.id) },
          lines: c.lines.map((l, j) => ({ ...l, amountMinor: c.totals.lines[j]! })),
          subtotalMinor: c.totals.subtotal,
          taxMinor: c.totals.tax,
          totalMinor: c.totals.total,
        };
        const pdf = await buffer(await renderInvoicePdf(doc));
        await store.put(`reference/${c.number}.pdf`, pdf);
        const facts = { id: c.id, number: c.number, period: PERIOD, currency: c.currency, totalMinor: c.totals.total.toString(), dueDate: doc.dueDate, customerName: c.name };
        await mailer.send(invoiceEmail(facts, c.email.replace('@bench.test', '@reference.bench.test'), pdf, { sellerName: SELLER.name, domain: fromDomain(FROM) }));
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  } finally {
    mailer.close();
  }
}

/** When each step finished, from the invoices' own timestamps (steps run one after another). */
async function stepTimes(ctx: BenchContext, started: Date, ended: Date): Promise<Record<string, number>> {
  const { rows } = await ctx.pool.query<{ usage: Date; invoices: Date; pdfs: Date; emails: Date }>(
    'SELECT max(computed_at) AS usage, max(issued_at) AS invoices, max(rendered_at) AS pdfs, max(sent_at) AS emails FROM invoices WHERE period = $1',
    [PERIOD],
  );
  const marks = rows[0]!;
  let from = started.getTime();
  const steps: Record<string, number> = {};
  for (const [step, at] of [...Object.entries(marks), ['finishing', ended]] as [string, Date][]) {
    steps[step] = Math.round((at.getTime() - from) / 100) / 10;
    from = at.getTime();
  }
  return steps;
}

async function mailpitCount(ctx: BenchContext): Promise<number> {
  const res = await fetch(`${ctx.mailpitUrl}/api/v1/info`);
  return ((await res.json()) as { Messages: number }).Messages;
}

export async function benchInvoicing(ctx: BenchContext): Promise<WorkloadResult> {
  await seed(ctx);
  const before = await mailpitCount(ctx);

  log(`reference: one process, aggregate query, pdfkit, ${IN_FLIGHT} SMTP connections`);
  let t0 = performance.now();
  await reference(ctx);
  const referenceSeconds = (performance.now() - t0) / 1000;
  log(`reference: ${referenceSeconds.toFixed(2)} s, ${Math.round(CUSTOMERS / referenceSeconds)} invoices/s`);

  log('ours: invoicing workflow');
  const started = new Date();
  t0 = performance.now();
  const { runId } = await ctx.runs.start('invoicing', { period: PERIOD, taxRate: '0.2' }, { runId: `bench-invoicing-${process.pid}`, startedBy: 'bench' });
  const result = (await ctx.client.workflow.getHandle(runId).result()) as RunResult;
  const oursSeconds = (performance.now() - t0) / 1000;
  const ended = new Date();
  const { rows } = await ctx.pool.query<{ sent: number }>(`SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent FROM invoices WHERE period = $1`, [PERIOD]);
  const mails = (await mailpitCount(ctx)) - before;
  const steps = await stepTimes(ctx, started, ended);
  log(`ours: ${oursSeconds.toFixed(2)} s, ${Math.round(CUSTOMERS / oursSeconds)} invoices/s (status ${result.status}, ${rows[0]!.sent} sent); seconds per step: ${JSON.stringify(steps)}`);
  if (result.status !== 'success' || rows[0]!.sent !== CUSTOMERS || mails !== 2 * CUSTOMERS) {
    throw new Error(`invoicing: status ${result.status}, ${rows[0]!.sent} invoices sent, ${mails} emails reached Mailpit; expected ${CUSTOMERS}, ${CUSTOMERS} and ${2 * CUSTOMERS} (ours and the reference's)`);
  }
  return { oursSeconds, referenceSeconds, extra: { invoicesPerSecond: Math.round(CUSTOMERS / oursSeconds), referenceInvoicesPerSecond: Math.round(CUSTOMERS / referenceSeconds), stepSeconds: steps } };
}
