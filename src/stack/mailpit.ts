import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './ports';
import { httpOk, startService } from './process';
import { ensureMailpit } from './tools';

export interface MailpitOptions {
  /** Keeps the messages in this SQLite file across restarts; in a temporary file when absent. */
  dbFile?: string;
  /** Ports to prefer (free ones when absent or taken). */
  smtpPort?: number;
  httpPort?: number;
  /** Recipients the SMTP server refuses with a 550 unless they match (tests use it to refuse some). */
  allowedRecipients?: string;
  logFile: string;
  log: (m: string) => void;
}

export interface MailpitStack {
  /** smtp://127.0.0.1:<port>: what SMTP_URL should be. */
  smtpUrl: string;
  /** The web inbox and its HTTP API (/api/v1/messages). */
  httpUrl: string;
  stop(): Promise<void>;
}

/** Mailpit on 127.0.0.1: a real SMTP server that keeps every message for its web inbox and API. */
export async function startMailpit(opts: MailpitOptions): Promise<MailpitStack> {
  const bin = await ensureMailpit(opts.log);
  const smtpPort = await freePort(opts.smtpPort);
  const httpPort = await freePort(opts.httpPort);
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  if (opts.dbFile) fs.mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
  const args = [
    '--smtp', `127.0.0.1:${smtpPort}`,
    '--listen', `127.0.0.1:${httpPort}`,
    // Keep every message: the bench sends tens of thousands.
    '--max', '0',
    '--smtp-auth-accept-any', '--smtp-auth-allow-insecure',
    '--smtp-disable-rdns', '--disable-version-check', '--quiet',
    ...(opts.dbFile ? ['--database', opts.dbFile] : []),
    ...(opts.allowedRecipients ? ['--smtp-allowed-recipients', opts.allowedRecipients] : []),
  ];
  const service = await startService({
    name: 'Mailpit',
    command: bin,
    args,
    logFile: opts.logFile,
    port: smtpPort,
    timeoutMs: 30_000,
    ready: httpOk(`${httpUrl}/readyz`),
  });
  return { smtpUrl: `smtp://127.0.0.1:${smtpPort}`, httpUrl, stop: () => service.stop() };
}
