import { col, defineDataset } from './dataset';

// Invoicing's data: customers and their metered usage (imported), and the invoices the invoicing
// flow writes from them (read-only to every other job).

const system = { id: 'integer', created_at: 'timestamptz', updated_at: 'timestamptz' } as const;

export const customers = defineDataset({
  name: 'customers',
  table: 'customers',
  description: 'Billed customers, keyed by their id in the source system.',
  key: ['external_id'],
  idColumn: 'id',
  columns: {
    external_id: col.text({ required: true, max: 100, description: 'The customer id in the source system, unique; usage events name it.', aliases: ['customer_id', 'customer'] }),
    name: col.text({ required: true, max: 200, description: 'Name printed on invoices.', aliases: ['company', 'customer_name'] }),
    email: col.email({ required: false, description: 'Where invoices are emailed; without one, invoicing reports a row error.', aliases: ['billing_email', 'e-mail'] }),
    currency: col.currency({ default: 'EUR', description: 'Invoice currency (ISO 4217); EUR when blank. Usage prices are in it.' }),
    address_line1: col.text({ max: 200, description: 'Billing address, first line.', aliases: ['address', 'street'] }),
    address_line2: col.text({ max: 200, description: 'Billing address, second line.' }),
    postal_code: col.text({ max: 20, description: 'Postal code.', aliases: ['zip', 'postcode'] }),
    city: col.text({ max: 100, description: 'City.' }),
    country: col.text({ max: 100, description: 'Country.' }),
  },
  system,
});

export const usageEvents = defineDataset({
  name: 'usage_events',
  table: 'usage_events',
  description: 'Metered usage, one row per event, keyed by event id (importing a file again changes nothing).',
  key: ['event_id'],
  idColumn: 'id',
  columns: {
    event_id: col.text({ required: true, max: 200, description: 'Unique id of the event in the source system.', aliases: ['id'] }),
    customer: col.text({ required: true, max: 100, description: "The customer's external_id.", aliases: ['customer_id', 'external_id'] }),
    metric: col.text({ required: true, max: 100, description: 'What was used (api_calls, storage_gb_days); one invoice line per metric and unit price.' }),
    quantity: col.decimal({ required: true, scale: 6, integerDigits: 14, description: 'How much, 0 or more, up to 6 decimals.', aliases: ['qty'] }),
    unit_price: col.decimal({ required: true, scale: 6, integerDigits: 14, description: "Price per unit in the customer's currency, up to 6 decimals.", aliases: ['price'] }),
    occurred_at: col.timestamp({ required: true, description: 'When it happened; the invoice month is taken in UTC.', aliases: ['timestamp', 'time'] }),
  },
  system,
});

const money = (description: string) => col.number({ sql: 'integer', required: true, description });

export const invoices = defineDataset({
  name: 'invoices',
  table: 'invoices',
  description: 'Invoices, one per customer and month, written by the invoicing flow only.',
  key: ['customer_id', 'period'],
  idColumn: 'id',
  columns: {
    customer_id: col.number({ sql: 'integer', required: true, min: 1, description: 'customers.id' }),
    period: col.text({ required: true, max: 7, description: 'The month billed, YYYY-MM.' }),
    number: col.text({ max: 20, description: 'INV-<year>-<6 digits>, consecutive per year; empty while a draft.' }),
    status: col.enumOf(['draft', 'issued', 'sent', 'failed'], { description: 'draft, issued, sent, or failed (not delivered).' }),
    currency: col.currency({ description: 'ISO 4217 code.' }),
    subtotal_minor: money('Sum of the lines, in minor units (cents).'),
    tax_minor: money('Tax on the subtotal, in minor units.'),
    total_minor: money('Subtotal plus tax, in minor units.'),
    issue_date: col.date({ description: 'Date of issue.' }),
    due_date: col.date({ description: 'Payment due date.' }),
    pdf_key: col.text({ max: 300, description: 'Object-store key of the PDF.' }),
    email_state: col.enumOf(['pending', 'sending', 'sent', 'failed'], { description: 'Email delivery state.' }),
    sent_at: col.timestamp({ description: 'When the email was accepted by the SMTP server.' }),
  },
  system,
  writtenBy: 'invoicing',
});

export const invoiceLines = defineDataset({
  name: 'invoice_lines',
  table: 'invoice_lines',
  description: "Invoice lines: one per metric and unit price of the customer's usage in the month.",
  key: ['invoice_id', 'line_no'],
  idColumn: 'id',
  columns: {
    invoice_id: col.number({ sql: 'integer', required: true, min: 1, description: 'invoices.id' }),
    line_no: col.number({ sql: 'integer', required: true, min: 1, description: 'Position on the invoice, from 1.' }),
    metric: col.text({ required: true, max: 100, description: 'What was used.' }),
    quantity: col.decimal({ required: true, scale: 6, integerDigits: 20, description: 'Total quantity in the month.' }),
    unit_price: col.decimal({ required: true, scale: 6, integerDigits: 14, description: 'Price per unit.' }),
    amount_minor: money('quantity × unit price, rounded half away from zero to minor units.'),
    events: col.number({ sql: 'integer', required: true, min: 0, description: 'Usage events summed into the line.' }),
  },
  system,
  writtenBy: 'invoicing',
});
