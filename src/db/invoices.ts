import type { InvoiceDocument, Party } from '../invoicing/pdf';
import { periodRange } from '../jobs/invoicing';
import type { RunRef } from '../jobs/run';
import type { Pool, PoolClient } from './pool';
import { andWhere, type RowSelection } from './row-queries';

type Queryable = Pool | PoolClient;

/** One metric at one unit price of one customer's usage in a month: an invoice line to be. */
export interface UsageLine {
  customerId: number;
  currency: string;
  metric: string;
  /** Decimal text, exact. */
  quantity: string;
  unitPrice: string;
  events: number;
}

export interface DraftInvoice {
  customerId: number;
  currency: string;
  taxRate: string;
  subtotal: bigint;
  tax: bigint;
  total: bigint;
  lines: { metric: string; quantity: string; unitPrice: string; amount: bigint; events: number }[];
}

/** Money as the database hands it over: bigint columns as decimal text. */
type AsText<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] };

/** An issued invoice with what its PDF shows. */
export type InvoiceForPdf = AsText<Omit<InvoiceDocument, 'lines'>> & {
  id: number;
  customerId: number;
  pdfKey: string | null;
  renderedByRun: string | null;
  lines: AsText<InvoiceDocument['lines'][number]>[];
};

/** An issued invoice as the email step sees it, with its customer's current address. */
export interface InvoiceForEmail {
  id: number;
  customerId: number;
  number: string;
  period: string;
  currency: string;
  totalMinor: string;
  dueDate: string;
  pdfKey: string | null;
  emailState: 'pending' | 'sending' | 'sent' | 'failed';
  messageId: string | null;
  sentByRun: string | null;
  email: string | null;
  customerName: string;
  customerExternalId: string;
}

/** A webhook to tell about invoice events, and the run that causes them (its deliveries are its execution's). */
export interface InvoiceEvents {
  run: RunRef;
  webhook?: string;
}

// Any constant: the first key of the advisory locks that keep two attempts from emailing one invoice at once.
const EMAIL_LOCK = 0x62666d6c;

/** Usage events `e` of customer `c` in the month whose bounds are the given parameters. */
const usageInPeriod = (from: string, to: string) => `e.customer = c.external_id AND e.occurred_at >= ${from}::timestamptz AND e.occurred_at < ${to}::timestamptz`;

/**
 * Invoicing's queries. Steps work on a batch of customer ids; each invoice is unique per customer
 * and period, so every statement here can run again without creating anything twice.
 */
export const invoiceQueries = {
  /** Customers the filter (over the customers dataset) selects that have usage in the period: how many, and the highest id. */
  async countBillable(db: Queryable, selection: RowSelection, range: { from: string; to: string }): Promise<{ matched: number; maxId: number }> {
    const params: unknown[] = [range.from, range.to];
    const filter = andWhere(selection, params, 'c');
    const { rows } = await db.query<{ matched: number; maxId: number | null }>(
      `SELECT count(*)::int AS matched, max(c.id) AS "maxId" FROM customers c
       WHERE EXISTS (SELECT 1 FROM usage_events e WHERE ${usageInPeriod('$1', '$2')})${filter}`,
      params,
    );
    return { matched: rows[0]!.matched, maxId: rows[0]!.maxId ?? 0 };
  },

  /** Usage in the period of customers that exist nowhere: it is billed to nobody, and the run says so. */
  async orphanUsage(db: Queryable, range: { from: string; to: string }): Promise<{ events: number; customers: number }> {
    const { rows } = await db.query<{ events: number; customers: number }>(
      `SELECT count(*)::int AS events, count(DISTINCT e.customer)::int AS customers FROM usage_events e
       WHERE e.occurred_at >= $1::timestamptz AND e.occurred_at < $2::timestamptz AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.external_id = e.customer)`,
      [range.from, range.to],
    );
    return rows[0]!;
  },

  /** The usage lines of these customers in the period, except customers whose invoice is already issued. */
  async usageLines(db: Queryable, customerIds: readonly number[], period: string): Promise<UsageLine[]> {
    const range = periodRange(period);
    const { rows } = await db.query<UsageLine>(
      `SELECT c.id AS "customerId", c.currency, e.metric, e.unit_price::text AS "unitPrice", sum(e.quantity)::text AS quantity, count(*)::int AS events
       FROM customers c JOIN usage_events e ON ${usageInPeriod('$2', '$3')}
       WHERE c.id = ANY($1::bigint[])
         AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id AND i.period = $4 AND i.status <> 'draft')
       GROUP BY c.id, c.currency, e.metric, e.unit_price
       ORDER BY c.id, e.metric, e.unit_price`,
      [customerIds, range.from, range.to, period],
    );
    return rows;
  },

  /** How many of these customers already have an issued invoice for the period. */
  async countIssued(db: Queryable, customerIds: readonly number[], period: string): Promise<number> {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM invoices WHERE customer_id = ANY($1::bigint[]) AND period = $2 AND status <> 'draft'`, [customerIds, period]);
    return rows[0]!.n;
  },

  /**
   * Writes the drafts of these customers (amounts and lines), replacing older drafts of the same
   * month; issued invoices are never touched. Drafts of customers in `customerIds` that no longer
   * have usage are removed.
   */
  async saveDrafts(db: Queryable, customerIds: readonly number[], period: string, drafts: readonly DraftInvoice[]): Promise<void> {
    await db.query(
      `DELETE FROM invoices WHERE customer_id = ANY($1::bigint[]) AND period = $2 AND status = 'draft' AND customer_id <> ALL($3::bigint[])`,
      [customerIds, period, drafts.map((d) => d.customerId)],
    );
    if (drafts.length === 0) return;
    const { rows } = await db.query<{ id: number; customerId: number }>(
      `INSERT INTO invoices (customer_id, period, currency, tax_rate, subtotal_minor, tax_minor, total_minor)
       SELECT d.customer_id, $2, d.currency, d.tax_rate, d.subtotal, d.tax, d.total
       FROM unnest($1::bigint[], $3::text[], $4::numeric[], $5::bigint[], $6::bigint[], $7::bigint[]) AS d (customer_id, currency, tax_rate, subtotal, tax, total)
       ON CONFLICT (customer_id, period) DO UPDATE
         SET currency = EXCLUDED.currency, tax_rate = EXCLUDED.tax_rate, subtotal_minor = EXCLUDED.subtotal_minor, tax_minor = EXCLUDED.tax_minor,
             total_minor = EXCLUDED.total_minor, computed_at = now(), updated_at = now()
         WHERE invoices.status = 'draft'
       RETURNING id, customer_id AS "customerId"`,
      [
        drafts.map((d) => d.customerId),
        period,
        drafts.map((d) => d.currency),
        drafts.map((d) => d.taxRate),
        drafts.map((d) => d.subtotal.toString()),
        drafts.map((d) => d.tax.toString()),
        drafts.map((d) => d.total.toString()),
      ],
    );
    const invoiceOf = new Map(rows.map((r) => [r.customerId, r.id]));
    const lines = drafts.flatMap((d) => (invoiceOf.has(d.customerId) ? d.lines.map((l, i) => ({ ...l, invoiceId: invoiceOf.get(d.customerId)!, lineNo: i + 1 })) : []));
    await db.query('DELETE FROM invoice_lines WHERE invoice_id = ANY($1::bigint[])', [[...invoiceOf.values()]]);
    await db.query(
      `INSERT INTO invoice_lines (invoice_id, line_no, metric, quantity, unit_price, amount_minor, events)
       SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::numeric[], $5::numeric[], $6::bigint[], $7::int[])`,
      [
        lines.map((l) => l.invoiceId),
        lines.map((l) => l.lineNo),
        lines.map((l) => l.metric),
        lines.map((l) => l.quantity),
        lines.map((l) => l.unitPrice),
        lines.map((l) => l.amount.toString()),
        lines.map((l) => l.events),
      ],
    );
  },

  /**
   * Issues the drafts of these customers: each gets the next number of the issue date's year, in
   * customer order, in this transaction. The year's counter row stays locked until the
   * transaction ends, so numbers are consecutive, and a rollback gives them back. Returns how many
   * were issued.
   */
  async issue(
    client: PoolClient,
    customerIds: readonly number[],
    opts: { period: string; issueDate: string; dueDays: number; seller: Party; events: InvoiceEvents },
  ): Promise<number> {
    const year = Number(opts.issueDate.slice(0, 4));
    await client.query('INSERT INTO invoice_counters (year, last_number) VALUES ($1, 0) ON CONFLICT (year) DO NOTHING', [year]);
    const last = (await client.query<{ last: number }>('SELECT last_number AS last FROM invoice_counters WHERE year = $1 FOR UPDATE', [year])).rows[0]!.last;
    const { rows } = await client.query<{ id: number; number: string }>(
      `WITH drafts AS (
         SELECT i.id, row_number() OVER (ORDER BY i.customer_id) AS ord FROM invoices i
         WHERE i.customer_id = ANY($1::bigint[]) AND i.period = $2 AND i.status = 'draft'
       )
       UPDATE invoices i
       SET number = 'INV-' || $3::int || '-' || lpad(($4::int + d.ord)::text, greatest(6, length(($4::int + d.ord)::text)), '0'), status = 'issued',
           issue_date = $5::date, due_date = $5::date + $6::int, issued_at = now(), issued_by_run = $7, seller = $8::jsonb,
           bill_to = jsonb_strip_nulls(jsonb_build_object('name', c.name, 'customerId', c.external_id, 'email', c.email,
             'address', to_jsonb(array_remove(ARRAY[c.address_line1, c.address_line2, nullif(concat_ws(' ', c.postal_code, c.city), ''), c.country], NULL)))),
           updated_at = now()
       FROM drafts d, customers c
       WHERE i.id = d.id AND c.id = i.customer_id
       RETURNING i.id, i.number`,
      [customerIds, opts.period, year, last, opts.issueDate, opts.dueDays, opts.events.run.id, JSON.stringify(opts.seller)],
    );
    if (rows.length > 0) {
      await client.query('UPDATE invoice_counters SET last_number = last_number + $2 WHERE year = $1', [year, rows.length]);
      if (opts.events.webhook) await client.query(invoiceEventInsert('(SELECT unnest($1::bigint[]))'), [rows.map((r) => r.id), opts.events.run.id, 'invoice.issued', opts.events.webhook, opts.events.run.execution]);
    }
    return rows.length;
  },

  /** The issued invoices of these customers for the period, with their lines, for rendering. */
  async forPdf(db: Queryable, customerIds: readonly number[], period: string): Promise<InvoiceForPdf[]> {
    const { rows } = await db.query<InvoiceForPdf>(
      `SELECT i.id, i.customer_id AS "customerId", i.number, i.period, i.issue_date::text AS "issueDate", i.due_date::text AS "dueDate", i.currency, i.tax_rate::text AS "taxRate",
              i.subtotal_minor::text AS "subtotalMinor", i.tax_minor::text AS "taxMinor", i.total_minor::text AS "totalMinor",
              i.bill_to AS "billTo", i.seller, i.pdf_key AS "pdfKey", i.rendered_by_run AS "renderedByRun",
              coalesce((SELECT json_agg(json_build_object('metric', l.metric, 'quantity', l.quantity::text, 'unitPrice', l.unit_price::text, 'amountMinor', l.amount_minor::text) ORDER BY l.line_no)
                        FROM invoice_lines l WHERE l.invoice_id = i.id), '[]') AS lines
       FROM invoices i WHERE i.customer_id = ANY($1::bigint[]) AND i.period = $2 AND i.status <> 'draft' ORDER BY i.customer_id`,
      [customerIds, period],
    );
    return rows;
  },

  async recordPdfs(db: Queryable, runId: string, pdfs: readonly { id: number; key: string; size: number; sha256: string }[]): Promise<void> {
    if (pdfs.length === 0) return;
    await db.query(
      `UPDATE invoices i SET pdf_key = p.key, pdf_size = p.size, pdf_sha256 = p.sha256, rendered_at = now(), rendered_by_run = $5, updated_at = now()
       FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[]) AS p (id, key, size, sha256) WHERE i.id = p.id`,
      [pdfs.map((p) => p.id), pdfs.map((p) => p.key), pdfs.map((p) => p.size), pdfs.map((p) => p.sha256), runId],
    );
  },

  /**
   * Locks the issued invoices of these customers against another attempt of the same batch (a
   * retry while a stale attempt still runs) until the caller's transaction ends, then reads them
   * as they now stand.
   */
  async lockForEmail(client: PoolClient, customerIds: readonly number[], period: string): Promise<InvoiceForEmail[]> {
    await client.query(
      `SELECT pg_advisory_xact_lock($3, (i.id % 2147483647)::int) FROM (SELECT id FROM invoices WHERE customer_id = ANY($1::bigint[]) AND period = $2 AND status <> 'draft' ORDER BY id) i`,
      [customerIds, period, EMAIL_LOCK],
    );
    const { rows } = await client.query<InvoiceForEmail>(
      `SELECT i.id, i.customer_id AS "customerId", i.number, i.period, i.currency, i.total_minor::text AS "totalMinor", i.due_date::text AS "dueDate", i.pdf_key AS "pdfKey",
              i.email_state AS "emailState", i.email_message_id AS "messageId", i.sent_by_run AS "sentByRun", c.email, c.name AS "customerName", c.external_id AS "customerExternalId"
       FROM invoices i JOIN customers c ON c.id = i.customer_id
       WHERE i.customer_id = ANY($1::bigint[]) AND i.period = $2 AND i.status <> 'draft' ORDER BY i.customer_id`,
      [customerIds, period],
    );
    return rows;
  },

  /** Committed before the SMTP call: a crash after it leaves the invoice visibly "sending". */
  async markSending(db: Queryable, id: number, to: string, messageId: string): Promise<void> {
    await db.query(`UPDATE invoices SET email_state = 'sending', email_attempts = email_attempts + 1, email_to = $2, email_message_id = $3, email_error = NULL, updated_at = now() WHERE id = $1`, [id, to, messageId]);
  },

  /** Committed as soon as the SMTP server accepted the message, with the invoice.sent event. */
  async markSent(db: Queryable, id: number, events: InvoiceEvents): Promise<void> {
    if (!events.webhook) {
      await db.query(`UPDATE invoices SET email_state = 'sent', status = 'sent', sent_at = now(), sent_by_run = $2, updated_at = now() WHERE id = $1`, [id, events.run.id]);
      return;
    }
    await db.query(
      `WITH sent AS (UPDATE invoices SET email_state = 'sent', status = 'sent', sent_at = now(), sent_by_run = $2, updated_at = now() WHERE id = $1 RETURNING id)
       ${invoiceEventInsert('(SELECT id FROM sent)')}`,
      [id, events.run.id, 'invoice.sent', events.webhook, events.run.execution],
    );
  },

  async markFailed(db: Queryable, id: number, error: string): Promise<void> {
    await db.query(`UPDATE invoices SET email_state = 'failed', status = 'failed', email_error = $2, updated_at = now() WHERE id = $1`, [id, error]);
  },
};

/**
 * The outbox row of an invoice event ($2 run id, $3 event, $4 webhook, $5 the run's execution) for the invoices `ids` selects,
 * with the invoice as it stands: unique per event, invoice and target, so it is recorded once. The
 * envelope's timestamp is when the event happened (issued, or accepted by the SMTP server).
 */
const invoiceEventInsert = (ids: string) => `
  INSERT INTO notification_deliveries (id, run_id, execution_id, channel, target, event, subject, payload)
  SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), $2, $5, 'webhook', $4, $3, i.id::text,
         jsonb_build_object('type', $3::text, 'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'data', jsonb_strip_nulls(jsonb_build_object(
           'invoice', i.number, 'period', i.period, 'customer', c.external_id, 'currency', i.currency,
           'subtotalMinor', i.subtotal_minor::text, 'taxMinor', i.tax_minor::text, 'totalMinor', i.total_minor::text,
           'issueDate', i.issue_date, 'dueDate', i.due_date, 'messageId', i.email_message_id, 'runId', $2::text)))
  FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id IN ${ids}
  ON CONFLICT (event, subject, channel, target) DO NOTHING`;
