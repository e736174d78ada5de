/** A tiny client for the Batchflow API, as the CLI uses it. */
export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new CliError(`cannot reach the Batchflow API at ${this.baseUrl} (${(err as Error).cause ? String((err as Error & { cause: Error }).cause.message) : (err as Error).message}); is it running? (npm start, or set BATCHFLOW_API_URL)`, ExitCode.Unavailable);
    }
    const text = await response.text();
    const parsed = (response.headers.get('content-type') ?? '').includes('json') && text ? (JSON.parse(text) as T) : (text as T);
    if (response.status >= 400) {
      const message = (parsed as { message?: string }).message ?? text;
      throw new CliError(`${method} ${path}: ${response.status} ${message}`, response.status < 500 ? ExitCode.Usage : ExitCode.Unavailable);
    }
    return { status: response.status, body: parsed };
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
