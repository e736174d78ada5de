import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { apiKeyQueries, type ApiKeyInfo } from '../db/auth';
import { inTransaction, type Pool } from '../db/pool';
import { recordAudit, type Actor } from './audit';
import { scopes } from './scopes';

/**
 * API keys: `bf_<id>_<secret>`. The id (64 random bits, not secret) finds the key's row; the secret
 * (256 random bits) is stored only as its SHA-256. A fast hash is enough here: slow password hashes
 * (bcrypt, scrypt) exist to make guessing a low-entropy password expensive, but no one can guess
 * 256 random bits however fast the hash is, and a slow hash would cost CPU on every request.
 */

export type KeyScope = (typeof scopes)[number];
export const keyNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_", "@" or "-"');
export const keyScopesSchema = z.array(z.enum(scopes)).min(1).max(scopes.length);

/** Who is calling: the key's id and name, and what it may do. */
export interface Caller {
  keyId: string;
  name: string;
  scopes: KeyScope[];
}

/** A key as the API shows it, for the docs. */
export const apiKeyExample = {
  id: '3f9a1c2b7d4e5f60',
  name: 'etl-nightly',
  scopes: ['read', 'run'],
  createdAt: '2026-11-20T09:00:00.000Z',
  createdBy: 'ops',
  lastUsedAt: '2026-11-23T02:00:04.000Z',
  revokedAt: null,
};

export const keyInfoSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    scopes: z.array(z.enum(scopes)),
    createdAt: z.string(),
    createdBy: z.string(),
    lastUsedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .meta({ id: 'ApiKey', examples: [apiKeyExample] });
export type KeyInfo = z.infer<typeof keyInfoSchema>;

const TOKEN = /^bf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();
// Compared against when the id is unknown, so that answer takes as long as a wrong secret.
const NO_HASH = hashSecret('');

const toInfo = (row: ApiKeyInfo): KeyInfo => ({
  id: row.id,
  name: row.name,
  scopes: row.scopes as KeyScope[],
  createdAt: row.created_at.toISOString(),
  createdBy: row.created_by,
  lastUsedAt: row.last_used_at?.toISOString() ?? null,
  revokedAt: row.revoked_at?.toISOString() ?? null,
});

/** Creates a key; the returned `key` is the only time its secret exists outside the caller. */
export async function createKey(pool: Pool, actor: Actor, spec: { name: string; scopes: readonly KeyScope[] }): Promise<KeyInfo & { key: string }> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const distinct = scopes.filter((s) => spec.scopes.includes(s));
  const row = await inTransaction(pool, async (db) => {
    const inserted = await apiKeyQueries.insert(db, { id, name: spec.name, scopes: distinct, secretHash: hashSecret(secret), createdBy: actor.name });
    await recordAudit(db, actor, 'key.create', { details: { keyId: id, name: spec.name, scopes: distinct } });
    return inserted;
  });
  return { ...toInfo(row), key: `bf_${id}_${secret}` };
}

export async function listKeys(pool: Pool, opts: { includeRevoked: boolean }): Promise<KeyInfo[]> {
  return (await apiKeyQueries.list(pool, opts)).map(toInfo);
}

/** Revokes a key at once (the next request with it is a 401); undefined if there is no such key. */
export async function revokeKey(pool: Pool, actor: Actor, id: string): Promise<KeyInfo | undefined> {
  return inTransaction(pool, async (db) => {
    const revoked = await apiKeyQueries.revoke(db, id);
    if (revoked?.changed) await recordAudit(db, actor, 'key.revoke', { details: { keyId: id, name: revoked.key.name } });
    return revoked && toInfo(revoked.key);
  });
}

/** The caller a presented key belongs to; undefined for anything but a valid, unrevoked key. */
export async function verifyKey(pool: Pool, token: string): Promise<Caller | undefined> {
  const [, id, secret] = TOKEN.exec(token) ?? [];
  if (!id || !secret) return undefined;
  const row = await apiKeyQueries.find(pool, id);
  const matches = timingSafeEqual(hashSecret(secret), row?.secret_hash ?? NO_HASH);
  if (!row || !matches || row.revoked_at) return undefined;
  return { keyId: row.id, name: row.name, scopes: row.scopes as KeyScope[] };
}

/** Whether a caller may use a route of this scope: admin may do everything. */
export const allows = (caller: Caller, scope: KeyScope) => caller.scopes.includes(scope) || caller.scopes.includes('admin');
