import nodemailer from 'nodemailer';
import type { Config } from '../config';

export interface OutgoingEmail {
  to: string;
  subject: string;
  text: string;
  /** Derived from what the email is about, so that a resent copy carries the same one. */
  messageId: string;
  attachments?: { filename: string; content: Buffer; contentType: string }[];
}

/** Sends email through SMTP_URL, over a small pool of connections. */
export interface Mailer {
  /** False without SMTP_URL: sending can never work until it is set. */
  readonly configured: boolean;
  send(email: OutgoingEmail): Promise<void>;
  close(): void;
}

/** SMTP_URL is not set: sending can never work until it is. */
export class MailerNotConfigured extends Error {}

/** Concurrent SMTP connections: a batch's emails go out this many at a time. */
export const MAIL_CONNECTIONS = 4;

export function createMailer(email: Config['email']): Mailer {
  if (!email.smtpUrl) {
    return {
      configured: false,
      send: () => Promise.reject(new MailerNotConfigured('no SMTP server is configured (set SMTP_URL)')),
      close: () => undefined,
    };
  }
  const transport = nodemailer.createTransport({ url: email.smtpUrl, pool: true, maxConnections: MAIL_CONNECTIONS, maxMessages: Infinity, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
  return {
    configured: true,
    async send(message) {
      await transport.sendMail({ from: email.from, to: message.to, subject: message.subject, text: message.text, messageId: message.messageId, attachments: message.attachments });
    },
    close: () => transport.close(),
  };
}

/** The SMTP server refused the message for good (a 5xx reply: unknown recipient, policy): retrying cannot help. */
export function isRefusal(err: unknown): err is Error & { responseCode: number } {
  const code = (err as { responseCode?: unknown }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/** The domain of the from address, for Message-IDs. */
export const fromDomain = (from: string): string => /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? 'batchflow.localhost';
