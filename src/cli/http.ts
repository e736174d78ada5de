import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

interface ErrorBody {
  error?: string;
  message?: string;
  issues?: { field: string; message: string }[];
}

/** A tiny client for the Batchflow API, as the CLI uses it. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    /** The API key sent as `Authorization: Bearer`; without one the API answers 401. */
    private readonly key?: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    return this.send<T>(method, path, body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  /** Streams a local file to POST /uploads; answers its store:// source. */
  async upload(file: string): Promise<{ source: string; bytes: number; sha256: string }> {
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.Usage);
    }
    const { body } = await this.send<{ source: string; bytes: number; sha256: string }>('POST', `/uploads?filename=${encodeURIComponent(path.basename(file))}`, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: Readable.toWeb(fs.createReadStream(file)) as ReadableStream,
      duplex: 'half',
    });
    return body;
  }

  private async send<T>(method: string, path: string, init: RequestInit): Promise<{ status: number; body: T }> {
    const response = await this.fetch(path, { ...init, method });
    const text = await response.text();
    const parsed = (response.headers.get('content-type') ?? '').includes('json') && text ? (JSON.parse(text) as T) : (text as T);
    if (response.status >= 400) throw refusal(method, path, response, typeof parsed === 'object' && parsed ? parsed : { message: text });
    return { status: response.status, body: parsed };
  }

  /** Streams a download (following a redirect to S3) into `to`; returns its size and SHA-256. */
  async download(path: string, to: Writable): Promise<{ bytes: number; sha256: string }> {
    const response = await this.fetch(path, { method: 'GET' });
    if (!response.ok || !response.body) {
      const text = await response.text();
      throw refusal('GET', path, response, (response.headers.get('content-type') ?? '').includes('json') ? (JSON.parse(text) as ErrorBody) : { message: text });
    }
    const hash = createHash('sha256');
    let bytes = 0;
    await pipeline(
      Readable.fromWeb(response.body),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          bytes += chunk.length;
          yield chunk;
        }
      },
      to,
    );
    return { bytes, sha256: hash.digest('hex') };
  }

  /** A request with the key; a network failure is "API unavailable". */
  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(new URL(path, this.baseUrl), { ...init, headers: { ...(init.headers as Record<string, string>), ...(this.key && { authorization: `Bearer ${this.key}` }) } });
    } catch (err) {
      throw new CliError(`cannot reach the Batchflow API at ${this.baseUrl} (${(err as Error).cause ? String((err as Error & { cause: Error }).cause.message) : (err as Error).message}); is it running? (npm start, or set BATCHFLOW_API_URL)`, ExitCode.Unavailable);
    }
  }
}

/** An error answer as a person should read it: what was refused, each bad field on its own line, and what to do. */
function refusal(method: string, path: string, response: Response, body: ErrorBody): CliError {
  const status = response.status;
  const head = `${method} ${path.split('?')[0]}: ${status}${body.error ? ` ${body.error}` : ''}`;
  const lines = body.issues?.length ? body.issues.map((i) => `  ${i.field || 'body'}: ${i.message}`) : [`  ${body.message ?? response.statusText}`];
  if (status === 401) lines.push('  set BATCHFLOW_API_KEY to a key (batchflow keys create); against the local stack the CLI uses the key npm start keeps in $BATCHFLOW_DATA_DIR/admin-api-key');
  if (status === 429) lines.push(`  retry after ${response.headers.get('retry-after') ?? '?'} s`);
  // Too many requests and server faults may pass; anything else is the request's fault.
  const exitCode = status === 429 || status >= 500 ? ExitCode.Unavailable : ExitCode.Usage;
  return new CliError([head, ...lines].join('\n'), exitCode);
}

/** Exit codes a shell script can branch on. */
export const ExitCode = { Success: 0, Failed: 1, Partial: 2, Cancelled: 3, Usage: 64, Unavailable: 69 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
