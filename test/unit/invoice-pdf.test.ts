import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { printableText, renderInvoicePdf, type InvoiceDocument } from '../../src/invoicing/pdf';
import { pdfText } from '../helpers/pdf';

const invoice: InvoiceDocument = {
  number: 'INV-2026-000042',
  period: '2026-10',
  issueDate: '2026-11-01',
  dueDate: '2026-12-01',
  currency: 'EUR',
  taxRate: '0.2',
  seller: { name: 'Batchflow Demo Ltd', address: ['1 Example Street', '75001 Paris', 'France'], taxId: 'FR00123456789' },
  billTo: { name: 'Zoë Café GmbH', address: ['Hauptstraße 5', '10115 Berlin'], customerId: 'cus-7' },
  lines: [
    { metric: 'api_calls', quantity: '4734.000000', unitPrice: '0.012500', amountMinor: 5918n },
    { metric: 'storage_gb', quantity: '10.500000', unitPrice: '0.333000', amountMinor: 350n },
  ],
  subtotalMinor: 6268n,
  taxMinor: 1254n,
  totalMinor: 7522n,
};

describe('invoice PDF', () => {
  it('renders the same invoice to the same bytes', async () => {
    const [a, b] = await Promise.all([buffer(await renderInvoicePdf(invoice)), buffer(await renderInvoicePdf(invoice))]);
    assert.ok(a.length > 1000);
    assert.ok(a.equals(b), 'identical bytes, creation date and file ID included');
    assert.match(a.toString('latin1'), /\(D:20261101000000Z\)/, 'the creation date is the issue date');
  });

  it('shows the seller, customer, number, period, dates, lines and totals', async () => {
    const text = await pdfText(await buffer(await renderInvoicePdf(invoice)));
    for (const expected of ['Batchflow Demo Ltd', 'Zoë Café GmbH', 'Hauptstraße 5', 'INV-2026-000042', 'October 2026', '2026-11-01', '2026-12-01', 'cus-7']) {
      assert.ok(text.includes(expected), `${expected} in:\n${text}`);
    }
    assert.match(text, /api_calls\s+4,734\s+0\.0125 EUR\s+59\.18 EUR/);
    assert.match(text, /storage_gb\s+10\.5\s+0\.333 EUR\s+3\.50 EUR/);
    assert.match(text, /Subtotal\s+62\.68 EUR/);
    assert.match(text, /Tax \(20 %\)\s+12\.54 EUR/);
    assert.match(text, /Total\s+75\.22 EUR/);
  });

  it('starts a new page, with the table header again, when the lines do not fit', async () => {
    const many = { ...invoice, lines: Array.from({ length: 40 }, (_, i) => ({ metric: `metric_${i}`, quantity: '1', unitPrice: '1', amountMinor: 100n })) };
    const text = await pdfText(await buffer(await renderInvoicePdf(many)));
    assert.equal(text.split('\f').filter((page) => page.trim()).length, 2);
    assert.equal(text.match(/Unit price/g)?.length, 2);
    assert.ok(text.includes('metric_39'));
  });

  it('prints what the standard fonts lack as the nearest letter, or "?"', () => {
    assert.equal(printableText('Zoë Café'), 'Zoë Café');
    assert.equal(printableText('Łódź Őrség'), 'Lódz Orség');
    assert.equal(printableText('東京 €5'), '?? €5');
  });
});
