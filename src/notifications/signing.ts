import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures per Standard Webhooks (standardwebhooks.com): the secret is `whsec_` and the
 * base64 of the key; a delivery carries `webhook-id` (the same on every retry: receivers
 * deduplicate by it), `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`,
 * `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)).
 */

const keyOf = (secret: string) => Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');

export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The headers of one delivery attempt of `body`. */
export function webhookHeaders(secret: string, id: string, body: string, now: Date = new Date()): Record<string, string> {
  const timestamp = Math.floor(now.getTime() / 1000);
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signWebhook(secret, id, timestamp, body) };
}

/**
 * Whether a delivery is authentic: one of the signatures (space-separated, for key rotation)
 * matches, and its timestamp is within `toleranceSeconds` of now (replays of old deliveries fail).
 */
export function verifyWebhook(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string, opts: { now?: Date; toleranceSeconds?: number } = {}): boolean {
  const timestamp = Number(headers.timestamp);
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (!Number.isInteger(timestamp) || Math.abs(now - timestamp) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, headers.id, timestamp, body));
  return headers.signature.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** A new random secret in the whsec_ form. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
