import type { Pool } from '../../src/db/pool';

/** Fixtures for the invoicing tests: customers and usage of one test, named by its prefix. */

export interface CustomerFixture {
  /** The external id is `${prefix}-${key}`. */
  key: string;
  name?: string;
  /** null: the customer has no email address. */
  email?: string | null;
  currency?: string;
  address_line1?: string;
  city?: string;
}

export interface UsageFixture {
  customer: string;
  metric: string;
  quantity: string;
  unitPrice: string;
  at: string;
}

export const externalId = (prefix: string, key: string) => `${prefix}-${key}`;

/** Inserts customers; returns their ids by key. */
export async function seedCustomers(pool: Pool, prefix: string, customers: readonly CustomerFixture[]): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ id: number; external_id: string }>(
    `INSERT INTO customers (external_id, name, email, currency, address_line1, postal_code, city, country)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) RETURNING id, external_id`,
    [
      customers.map((c) => externalId(prefix, c.key)),
      customers.map((c) => c.name ?? `Customer ${c.key}`),
      customers.map((c) => (c.email === undefined ? `${prefix}.${c.key}@example.com` : c.email)),
      customers.map((c) => c.currency ?? 'EUR'),
      customers.map((c) => c.address_line1 ?? `${c.key} Main Street`),
      customers.map(() => '75001'),
      customers.map((c) => c.city ?? 'Paris'),
      customers.map(() => 'France'),
    ],
  );
  return new Map(rows.map((r) => [r.external_id.slice(prefix.length + 1), r.id]));
}

let eventSeq = 0;

export async function seedUsage(pool: Pool, prefix: string, events: readonly UsageFixture[]): Promise<void> {
  await pool.query(
    `INSERT INTO usage_events (event_id, customer, metric, quantity, unit_price, occurred_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::timestamptz[])`,
    [
      events.map(() => `${prefix}-e${++eventSeq}`),
      events.map((e) => externalId(prefix, e.customer)),
      events.map((e) => e.metric),
      events.map((e) => e.quantity),
      events.map((e) => e.unitPrice),
      events.map((e) => e.at),
    ],
  );
}

/** `count` customers with `events` usage events each in the period (api_calls at 0.0125 EUR, quantity 1–100). */
export async function seedMonth(pool: Pool, prefix: string, count: number, events: number, period: string): Promise<void> {
  await pool.query(
    `INSERT INTO customers (external_id, name, email, address_line1, postal_code, city, country)
     SELECT $1 || '-c' || g, 'Customer ' || g, $1 || '.c' || g || '@example.com', g || ' Main Street', '75001', 'Paris', 'France' FROM generate_series(1, $2::int) g`,
    [prefix, count],
  );
  await pool.query(
    `INSERT INTO usage_events (event_id, customer, metric, quantity, unit_price, occurred_at)
     SELECT $1 || '-c' || g || '-e' || e, $1 || '-c' || g, CASE WHEN e % 3 = 0 THEN 'storage_gb' ELSE 'api_calls' END, 1 + (g * 7 + e * 13) % 100, 0.0125,
            ($4 || '-01T00:00:00Z')::timestamptz + (e % 28) * interval '1 day'
     FROM generate_series(1, $2::int) g, generate_series(1, $3::int) e`,
    [prefix, count, events, period],
  );
}

/** The filter that selects a test's own customers. */
export const ownCustomers = (prefix: string) => ({ field: 'external_id', op: 'starts_with', value: `${prefix}-` });

export interface InvoiceRow {
  id: number;
  customer: string;
  number: string | null;
  status: string;
  currency: string;
  subtotal: string;
  tax: string;
  total: string;
  pdfKey: string | null;
  pdfSha256: string | null;
  emailState: string;
  emailAttempts: number;
  messageId: string | null;
  lines: { metric: string; quantity: string; unitPrice: string; amount: string; events: number }[];
}

/** A test's invoices for a period, by customer key. */
export async function invoicesOf(pool: Pool, prefix: string, period: string): Promise<Map<string, InvoiceRow>> {
  const { rows } = await pool.query<InvoiceRow>(
    `SELECT i.id, substr(c.external_id, length($1) + 2) AS customer, i.number, i.status, i.currency, i.subtotal_minor::text AS subtotal, i.tax_minor::text AS tax,
            i.total_minor::text AS total, i.pdf_key AS "pdfKey", i.pdf_sha256 AS "pdfSha256", i.email_state AS "emailState", i.email_attempts AS "emailAttempts",
            i.email_message_id AS "messageId",
            (SELECT json_agg(json_build_object('metric', l.metric, 'quantity', l.quantity::text, 'unitPrice', l.unit_price::text, 'amount', l.amount_minor::text, 'events', l.events) ORDER BY l.line_no)
             FROM invoice_lines l WHERE l.invoice_id = i.id) AS lines
     FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE c.external_id LIKE $1 || '-%' AND i.period = $2 ORDER BY c.id`,
    [prefix, period],
  );
  return new Map(rows.map((r) => [r.customer, r]));
}

/** Every invoice number of a year, in order: they must run 1, 2, 3, … with no gap and no repeat. */
export async function numbersOfYear(pool: Pool, year: number): Promise<{ numbers: number[]; counter: number }> {
  const { rows } = await pool.query<{ n: number }>(`SELECT substr(number, 10)::int AS n FROM invoices WHERE number LIKE $1 ORDER BY 1`, [`INV-${year}-%`]);
  const counter = (await pool.query<{ last: number }>('SELECT last_number AS last FROM invoice_counters WHERE year = $1', [year])).rows[0]?.last ?? 0;
  return { numbers: rows.map((r) => r.n), counter };
}
