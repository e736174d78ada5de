import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake product API for cache-refresh tests and the bench: a real HTTP server on a free port with
 * knobs for latency, 404s, malformed JSON, bad fields, hanging requests, bursts of 500s and 429s
 * with Retry-After. It counts at its own end what a polite client must respect: requests per
 * one-second window and requests in flight at once.
 *
 *   GET  /products/:id                  one record:  {"id", "title", "pricing": {"amount", "currency"}}
 *                                       (or {"<wrap>": record} when the wrap knob is set)
 *   POST /products/batch {"ids": [...]}  {"items": [records]} (ids it does not have are left out)
 *   GET  /products?ids=a,b,c            the same
 */

export interface UpstreamKnobs {
  /** Added before every answer. */
  latencyMs: number;
  /** Ids it does not have: 404, and left out of batch answers. */
  missing: Set<string>;
  /** Ids whose answer is not JSON. */
  malformed: Set<string>;
  /** Records served instead of the generated one (bad fields, changed prices). */
  records: Map<string, Record<string, unknown>>;
  /** Ids whose requests never get an answer: the client must time out. */
  hang: Set<string>;
  /** Ids answered with this status every time (403, 400). */
  status: Map<string, number>;
  /** Requests answered 500, by arrival number from 1: a burst is a range, a sustained failure everything past a number. */
  fails: (seq: number) => boolean;
  /** Ids answered 429 with this Retry-After for their first `times` requests. */
  throttle: Map<string, { retryAfter: string; times: number }>;
  /** Wraps each single record in an object under this field ({"data": record}). */
  wrap?: string;
}

export interface Arrival {
  /** performance.now() when the request arrived. */
  at: number;
  seq: number;
  ids: string[];
  status: number;
  /** The Authorization header it carried. */
  authorization?: string;
}

/** The record the upstream holds for an id unless told otherwise. */
export const upstreamRecord = (id: string) => ({ id, title: `Product ${id}`, pricing: { amount: 10 + (id.length % 7), currency: 'EUR' } });

/** The mapping from the fake's records to product_cache columns. */
export const upstreamMapping = { title: 'name', 'pricing.amount': 'price', 'pricing.currency': 'currency' };

const defaultKnobs = (): UpstreamKnobs => ({
  latencyMs: 0,
  missing: new Set(),
  malformed: new Set(),
  records: new Map(),
  hang: new Set(),
  status: new Map(),
  fails: () => false,
  throttle: new Map(),
  wrap: undefined,
});

export async function startFakeUpstream(initial: Partial<UpstreamKnobs> = {}) {
  const knobs: UpstreamKnobs = { ...defaultKnobs(), ...initial };
  const arrivals: Arrival[] = [];
  const perId = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  let seq = 0;

  const answer = async (req: http.IncomingMessage, res: http.ServerResponse, arrival: Arrival): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const single = req.method === 'GET' ? /^\/products\/([^/]+)$/.exec(url.pathname) : null;
    let ids: string[];
    if (single) ids = [decodeURIComponent(single[1]!)];
    else if (req.method === 'POST' && url.pathname === '/products/batch') {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      ids = ((JSON.parse(body) as { ids: unknown[] }).ids ?? []).map(String);
    } else if (req.method === 'GET' && url.pathname === '/products' && url.searchParams.has('ids')) ids = url.searchParams.get('ids')!.split(',');
    else return send(res, arrival, 400, { error: 'unknown route' });
    arrival.ids = ids;
    const seen = ids.map((id) => {
      const n = (perId.get(id) ?? 0) + 1;
      perId.set(id, n);
      return n;
    });
    if (knobs.latencyMs > 0) await new Promise((r) => setTimeout(r, knobs.latencyMs));
    if (ids.some((id) => knobs.hang.has(id))) return; // never answered; the client gives up
    if (knobs.fails(arrival.seq)) return send(res, arrival, 500, { error: 'boom' });
    const throttled = ids.map((id, i) => ({ t: knobs.throttle.get(id), n: seen[i]! })).find(({ t, n }) => t && n <= t.times);
    if (throttled) return send(res, arrival, 429, { error: 'slow down' }, { 'retry-after': throttled.t!.retryAfter });
    if (!single) return send(res, arrival, 200, { items: ids.filter((id) => !knobs.missing.has(id)).map((id) => knobs.records.get(id) ?? upstreamRecord(id)) });
    const id = ids[0]!;
    if (knobs.status.has(id)) return send(res, arrival, knobs.status.get(id)!, { error: 'no' });
    if (knobs.missing.has(id)) return send(res, arrival, 404, { error: 'not found' });
    if (knobs.malformed.has(id)) return send(res, arrival, 200, '{"id": "' + id + '", "title": ');
    const record = knobs.records.get(id) ?? upstreamRecord(id);
    return send(res, arrival, 200, knobs.wrap ? { [knobs.wrap]: record } : record);
  };

  const server = http.createServer((req, res) => {
    const arrival: Arrival = { at: performance.now(), seq: ++seq, ids: [], status: 0, authorization: req.headers.authorization };
    arrivals.push(arrival);
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => (inFlight -= 1));
    answer(req, res, arrival).catch((err: Error) => send(res, arrival, 500, { error: err.message }));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    knobs,
    arrivals,
    /** Requests that asked about this id. */
    requestsFor: (id: string) => perId.get(id) ?? 0,
    /** The most requests in flight at once so far. */
    get maxInFlight() {
      return maxInFlight;
    },
    /** The most requests that arrived within any `windowMs` (a sliding window over arrival times). */
    maxPerWindow(windowMs = 1_000): number {
      const times = arrivals.map((a) => a.at).sort((a, b) => a - b);
      let most = 0;
      for (let first = 0, last = 0; last < times.length; last++) {
        while (times[last]! - times[first]! >= windowMs) first++;
        most = Math.max(most, last - first + 1);
      }
      return most;
    },
    /** Forgets the counts and sets the knobs back to their defaults (plus `next`). */
    reset(next: Partial<UpstreamKnobs> = {}) {
      Object.assign(knobs, defaultKnobs(), next);
      arrivals.length = 0;
      perId.clear();
      maxInFlight = inFlight;
      seq = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
export type FakeUpstream = Awaited<ReturnType<typeof startFakeUpstream>>;

function send(res: http.ServerResponse, arrival: Arrival, status: number, body: unknown, headers: Record<string, string> = {}): void {
  arrival.status = status;
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}
