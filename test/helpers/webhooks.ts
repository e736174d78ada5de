import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got, and whether its Standard Webhooks signature verified. */
export interface Received {
  id: string;
  timestamp: number;
  type: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  verified: boolean;
  /** The HTTP status the receiver answered with. */
  answered: number;
}

/**
 * Checks a delivery the way a receiver following the Standard Webhooks specification does, written
 * out here from the specification rather than taken from the code under test.
 */
function verify(secret: string, headers: http.IncomingHttpHeaders, body: string): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((s) => {
    const [version, signature] = s.split(',');
    const given = Buffer.from(signature ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/**
 * A local HTTP endpoint that records signed webhook deliveries. `fail(request)` answers 500 for
 * the requests it returns true for (the nth request overall is `n`, from 1).
 */
export async function startWebhookReceiver(opts: { fail?: (n: number, body: Received['body']) => boolean } = {}) {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) throw new Error('WEBHOOK_SECRET is not set: run the tests through `npm test`');
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = JSON.parse(text) as Received['body'];
      const answered = opts.fail?.(received.length + 1, body) ? 500 : 204;
      received.push({ id: String(req.headers['webhook-id']), timestamp: Number(req.headers['webhook-timestamp']), type: body.type, body, verified: verify(secret, req.headers, text), answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks?token=not-shown`,
    received,
    /** Requests answered 2xx, one per webhook-id (retries of a delivery share its id). */
    delivered: () => received.filter((r) => r.answered < 300),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
