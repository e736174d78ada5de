import { formatDecimal, formatMoney, formatPercent, formatUnitPrice } from './money';

/** Who issues invoices: from the configuration, frozen into each invoice when it is issued. */
export interface Party {
  name: string;
  address: string[];
  email?: string;
  taxId?: string;
}

/** Everything an invoice's PDF shows; the same document always renders to the same bytes. */
export interface InvoiceDocument {
  number: string;
  period: string;
  issueDate: string;
  dueDate: string;
  currency: string;
  taxRate: string;
  seller: Party;
  billTo: Party & { customerId: string };
  lines: { metric: string; quantity: string; unitPrice: string; amountMinor: bigint }[];
  subtotalMinor: bigint;
  taxMinor: bigint;
  totalMinor: bigint;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** "2026-10" → "October 2026". */
export function monthName(period: string): string {
  const [year, month] = period.split('-');
  return `${MONTHS[Number(month) - 1]} ${year}`;
}

// Characters the standard fonts' encoding (Windows-1252) has beyond Latin-1, and stand-ins for
// letters it lacks that do not decompose into a base letter and accents.
const CP1252_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');
const STAND_INS: Record<string, string> = { Ł: 'L', ł: 'l', Đ: 'D', đ: 'd', Ħ: 'H', ħ: 'h', ı: 'i' };
const printable = (c: string) => {
  const code = c.codePointAt(0)!;
  return (code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || CP1252_EXTRA.has(c);
};

/** Text the standard fonts can print: other letters lose their accents ("Ő" → "O"), the rest become "?". */
export function printableText(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  let out = '';
  for (const c of text) {
    if (printable(c)) {
      out += c;
      continue;
    }
    const base = c.normalize('NFKD').replace(/\p{M}/gu, '');
    out += base && [...base].every(printable) ? base : (STAND_INS[c] ?? '?');
  }
  return out;
}

// A4 in points, and the table's columns: metric, quantity, unit price, amount.
const PAGE = { width: 595.28, height: 841.89, margin: 50 };
const COLUMNS = [
  { title: 'Metric', x: 50, width: 205, align: 'left' },
  { title: 'Quantity', x: 255, width: 90, align: 'right' },
  { title: 'Unit price', x: 345, width: 100, align: 'right' },
  { title: 'Amount', x: 445, width: 100, align: 'right' },
] as const;
const ROW = 18;
const GREY = '#555555';

const printableParty = <P extends Party>(p: P): P => ({ ...p, name: printableText(p.name), address: p.address.map(printableText) });
const printableDocument = (d: InvoiceDocument): InvoiceDocument => ({
  ...d,
  seller: printableParty(d.seller),
  billTo: { ...printableParty(d.billTo), customerId: printableText(d.billTo.customerId) },
  lines: d.lines.map((l) => ({ ...l, metric: printableText(l.metric) })),
});

/**
 * Renders an invoice as an A4 PDF, streamed as it is written. The document's creation date is its
 * issue date and its file ID derives from that, so the same invoice renders to the same bytes.
 * Text uses the standard Helvetica fonts (Windows-1252 characters). pdfkit is loaded on the first
 * invoice, not with the worker: its font metrics cost every worker about 20 MB otherwise.
 */
export async function renderInvoicePdf(source: InvoiceDocument): Promise<PDFKit.PDFDocument> {
  const { default: PDFDocument } = await import('pdfkit');
  const invoice = printableDocument(source);
  const issued = new Date(`${invoice.issueDate}T00:00:00Z`);
  const doc = new PDFDocument({
    size: 'A4',
    margin: PAGE.margin,
    info: { Title: `Invoice ${invoice.number}`, Author: invoice.seller.name, Subject: `Invoice for ${monthName(invoice.period)}`, Creator: 'Batchflow', Producer: 'Batchflow', CreationDate: issued, ModDate: issued },
  });
  const right = PAGE.width - PAGE.margin;

  // Seller, top left; the invoice's identity, top right.
  doc.font('Helvetica-Bold').fontSize(16).text(invoice.seller.name, PAGE.margin, PAGE.margin, { width: 280 });
  doc.font('Helvetica').fontSize(9).fillColor(GREY);
  for (const line of [...invoice.seller.address, ...(invoice.seller.taxId ? [`VAT ${invoice.seller.taxId}`] : []), ...(invoice.seller.email ? [invoice.seller.email] : [])]) {
    doc.text(line, { width: 280 });
  }
  doc.fillColor('black').font('Helvetica-Bold').fontSize(22).text('INVOICE', 345, PAGE.margin, { width: right - 345, align: 'right' });
  const facts: [string, string][] = [
    ['Number', invoice.number],
    ['Period', monthName(invoice.period)],
    ['Issue date', invoice.issueDate],
    ['Due date', invoice.dueDate],
  ];
  let y = PAGE.margin + 32;
  for (const [label, value] of facts) {
    doc.font('Helvetica').fontSize(9).fillColor(GREY).text(label, 345, y, { width: 80 });
    doc.font('Helvetica-Bold').fillColor('black').text(value, 425, y, { width: right - 425, align: 'right' });
    y += 14;
  }

  // Bill to.
  y = Math.max(y, doc.y) + 30;
  doc.font('Helvetica').fontSize(9).fillColor(GREY).text('BILL TO', PAGE.margin, y);
  doc.font('Helvetica-Bold').fontSize(11).fillColor('black').text(invoice.billTo.name, PAGE.margin, y + 13, { width: 300 });
  doc.font('Helvetica').fontSize(10);
  for (const line of invoice.billTo.address) doc.text(line, { width: 300 });
  doc.fontSize(9).fillColor(GREY).text(`Customer ${invoice.billTo.customerId}`, { width: 300 });

  // The lines, with the header repeated on each page.
  y = doc.y + 25;
  const header = () => {
    doc.rect(PAGE.margin, y - 4, right - PAGE.margin, ROW).fill('#eeeeee');
    doc.font('Helvetica-Bold').fontSize(9).fillColor('black');
    for (const c of COLUMNS) doc.text(c.title, c.x + 4, y, { width: c.width - 8, align: c.align });
    y += ROW + 2;
  };
  header();
  doc.font('Helvetica').fontSize(9);
  for (const line of invoice.lines) {
    if (y > PAGE.height - PAGE.margin - 120) {
      doc.addPage();
      y = PAGE.margin;
      header();
      doc.font('Helvetica').fontSize(9);
    }
    const cells = [line.metric, formatDecimal(line.quantity), formatUnitPrice(line.unitPrice, invoice.currency), formatMoney(line.amountMinor, invoice.currency)];
    COLUMNS.forEach((c, i) => doc.text(cells[i]!, c.x + 4, y, { width: c.width - 8, align: c.align, lineBreak: false, ellipsis: true }));
    y += ROW;
    doc.moveTo(PAGE.margin, y - 5).lineTo(right, y - 5).lineWidth(0.5).strokeColor('#dddddd').stroke();
  }

  // Totals.
  y += 10;
  const totals: [string, string, boolean][] = [
    ['Subtotal', formatMoney(invoice.subtotalMinor, invoice.currency), false],
    [`Tax (${formatPercent(invoice.taxRate)})`, formatMoney(invoice.taxMinor, invoice.currency), false],
    ['Total', formatMoney(invoice.totalMinor, invoice.currency), true],
  ];
  for (const [label, value, strong] of totals) {
    doc.font(strong ? 'Helvetica-Bold' : 'Helvetica').fontSize(strong ? 12 : 10).fillColor('black');
    doc.text(label, 345, y, { width: 100 });
    doc.text(value, 445, y, { width: right - 445, align: 'right' });
    y += strong ? 20 : 16;
  }

  doc.font('Helvetica').fontSize(9).fillColor(GREY).text(`Payment is due by ${invoice.dueDate}. Please quote ${invoice.number} with your payment.`, PAGE.margin, y + 30, { width: right - PAGE.margin });
  doc.end();
  return doc;
}
