import { createHash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A tiny client for the Batchflow API, as the CLI uses it. */
export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await this.fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed = (response.headers.get('content-type') ?? '').includes('json') && text ? (JSON.parse(text) as T) : (text as T);
    if (response.status >= 400) {
      const message = (parsed as { message?: string }).message ?? text;
      throw new CliError(`${method} ${path}: ${response.status} ${message}`, response.status < 500 ? ExitCode.Usage : ExitCode.Unavailable);
    }
    return { status: response.status, body: parsed };
  }

  /** Streams a download (following a redirect to S3) into `to`; returns its size and SHA-256. */
  async download(path: string, to: Writable): Promise<{ bytes: number; sha256: string }> {
    const response = await this.fetch(path, { method: 'GET' });
    if (!response.ok || !response.body) {
      const text = await response.text();
      const message = (response.headers.get('content-type') ?? '').includes('json') ? ((JSON.parse(text) as { message?: string }).message ?? text) : text;
      throw new CliError(`GET ${path}: ${response.status} ${message}`, response.status < 500 ? ExitCode.Usage : ExitCode.Unavailable);
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

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(new URL(path, this.baseUrl), init);
    } catch (err) {
      throw new CliError(`cannot reach the Batchflow API at ${this.baseUrl} (${(err as Error).cause ? String((err as Error & { cause: Error }).cause.message) : (err as Error).message}); is it running? (npm start, or set BATCHFLOW_API_URL)`, ExitCode.Unavailable);
    }
  }
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
