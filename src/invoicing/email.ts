import type { OutgoingEmail } from '../notifications/mailer';
import { formatMoney } from './money';
import { monthName } from './pdf';

export interface InvoiceEmailFacts {
  id: number;
  number: string;
  period: string;
  currency: string;
  totalMinor: string;
  dueDate: string;
  customerName: string;
}

/**
 * The Message-ID of an invoice's email: derived from the invoice, so that a copy sent again after
 * an interrupted attempt carries the same one and a receiver (or a test) can tell it is a copy.
 */
const invoiceMessageId = (invoice: { id: number; number: string }, domain: string) => `<${invoice.number}.${invoice.id}@${domain}>`;

/** The email that carries an invoice's PDF to its customer. */
export function invoiceEmail(invoice: InvoiceEmailFacts, to: string, pdf: Buffer, opts: { sellerName: string; domain: string }): OutgoingEmail {
  const total = formatMoney(BigInt(invoice.totalMinor), invoice.currency);
  return {
    to,
    subject: `Invoice ${invoice.number} for ${monthName(invoice.period)}`,
    text: [
      `Hello ${invoice.customerName},`,
      '',
      `Please find attached invoice ${invoice.number} for ${monthName(invoice.period)}.`,
      `Amount due: ${total}, by ${invoice.dueDate}.`,
      '',
      opts.sellerName,
    ].join('\n'),
    messageId: invoiceMessageId(invoice, opts.domain),
    attachments: [{ filename: `${invoice.number}.pdf`, content: pdf, contentType: 'application/pdf' }],
  };
}
