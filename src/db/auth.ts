import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

export interface ApiKeyRow {
  id: string;
  name: string;
  scopes: string[];
  secret_hash: Buffer;
  created_at: Date;
  created_by: string;
  last_used_at: Date | null;
  revoked_at: Date | null;
}
export type ApiKeyInfo = Omit<ApiKeyRow, 'secret_hash'>;

const INFO_COLUMNS = 'id, name, scopes, created_at, created_by, last_used_at, revoked_at';

/** API keys: a row per key, its secret only as a hash. */
export const apiKeyQueries = {
  async insert(db: Queryable, key: { id: string; name: string; scopes: readonly string[]; secretHash: Buffer; createdBy: string }): Promise<ApiKeyInfo> {
    const { rows } = await db.query<ApiKeyInfo>(
      `INSERT INTO api_keys (id, name, scopes, secret_hash, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING ${INFO_COLUMNS}`,
      [key.id, key.name, key.scopes, key.secretHash, key.createdBy],
    );
    return rows[0]!;
  },

  async find(db: Queryable, id: string): Promise<ApiKeyRow | undefined> {
    const { rows } = await db.query<ApiKeyRow>(`SELECT ${INFO_COLUMNS}, secret_hash FROM api_keys WHERE id = $1`, [id]);
    return rows[0];
  },

  async list(db: Queryable, opts: { includeRevoked: boolean }): Promise<ApiKeyInfo[]> {
    const { rows } = await db.query<ApiKeyInfo>(`SELECT ${INFO_COLUMNS} FROM api_keys WHERE $1 OR revoked_at IS NULL ORDER BY created_at, id`, [opts.includeRevoked]);
    return rows;
  },

  /** Revokes a key; undefined when there is none, `changed: false` when it was revoked already. */
  async revoke(db: Queryable, id: string): Promise<{ key: ApiKeyInfo; changed: boolean } | undefined> {
    const { rows } = await db.query<ApiKeyInfo & { changed: boolean }>(
      `WITH before AS (SELECT id, revoked_at IS NULL AS changed FROM api_keys WHERE id = $1 FOR UPDATE)
       UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, now()) FROM before WHERE k.id = before.id
       RETURNING ${INFO_COLUMNS.split(', ').map((c) => `k.${c}`).join(', ')}, before.changed`,
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    const { changed, ...key } = row;
    return { key, changed };
  },

  async touch(db: Queryable, id: string): Promise<void> {
    await db.query('UPDATE api_keys SET last_used_at = now() WHERE id = $1', [id]);
  },
};

export interface AuditRow {
  id: number;
  at: Date;
  actor: string;
  key_id: string | null;
  action: string;
  run_id: string | null;
  details: Record<string, unknown> | null;
  ip: string | null;
  user_agent: string | null;
}

/** The audit log: appended to, read newest first. */
export const auditQueries = {
  async insert(db: Queryable, entry: Omit<AuditRow, 'id' | 'at'>): Promise<void> {
    await db.query('INSERT INTO audit_log (actor, key_id, action, run_id, details, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      entry.actor,
      entry.key_id,
      entry.action,
      entry.run_id,
      entry.details === null ? null : JSON.stringify(entry.details),
      entry.ip,
      entry.user_agent,
    ]);
  },

  /** A page, newest first: entries before the id `before`, each filter applied when given. */
  async list(db: Queryable, filter: { runId?: string; actor?: string; action?: string; before?: number; limit: number }): Promise<AuditRow[]> {
    const { rows } = await db.query<AuditRow>(
      `SELECT id, at, actor, key_id, action, run_id, details, ip, user_agent FROM audit_log
       WHERE ($1::text IS NULL OR run_id = $1) AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR action = $3)
         AND ($4::bigint IS NULL OR id < $4)
       ORDER BY id DESC LIMIT $5`,
      [filter.runId ?? null, filter.actor ?? null, filter.action ?? null, filter.before ?? null, filter.limit],
    );
    return rows;
  },
};
