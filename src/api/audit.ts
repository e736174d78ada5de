import { z } from 'zod';
import { auditQueries } from '../db/auth';
import type { Pool, PoolClient } from '../db/pool';

/** What the audit log records. */
export const auditActions = ['start', 'cancel', 'approve', 'reject', 'upload', 'key.create', 'key.revoke'] as const;
export type AuditAction = (typeof auditActions)[number];

/** Who did something, and from where: a key through the API, or an operator at the database. */
export interface Actor {
  /** The key's name (an operator's own name for the CLI's direct database commands). */
  name: string;
  keyId?: string;
  ip?: string;
  userAgent?: string;
}

/** An audit entry as the API shows it, for the docs. */
export const auditExample = {
  id: 812,
  at: '2026-11-22T09:41:07.000Z',
  actor: 'dana',
  keyId: '3f9a1c2b7d4e5f60',
  action: 'approve',
  runId: 'deactivate-pending-2026-11-22',
  details: { comment: 'checked the preview' },
  ip: '10.0.3.17',
  userAgent: 'batchflow-cli',
};

export const auditEntrySchema = z
  .object({
    id: z.number().int(),
    at: z.string(),
    actor: z.string(),
    keyId: z.string().nullable(),
    action: z.enum(auditActions),
    runId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
  })
  .meta({ id: 'AuditEntry', examples: [auditExample] });
export type AuditEntry = z.infer<typeof auditEntrySchema>;

export async function recordAudit(db: Pool | PoolClient, actor: Actor, action: AuditAction, what: { runId?: string; details?: Record<string, unknown> } = {}): Promise<void> {
  await auditQueries.insert(db, {
    actor: actor.name,
    key_id: actor.keyId ?? null,
    action,
    run_id: what.runId ?? null,
    details: what.details ?? null,
    ip: actor.ip ?? null,
    user_agent: actor.userAgent?.slice(0, 500) ?? null,
  });
}

export async function listAudit(db: Pool, filter: { runId?: string; actor?: string; action?: AuditAction; before?: number; limit: number }): Promise<AuditEntry[]> {
  const rows = await auditQueries.list(db, filter);
  return rows.map((r) => ({
    id: r.id,
    at: r.at.toISOString(),
    actor: r.actor,
    keyId: r.key_id,
    action: r.action as AuditAction,
    runId: r.run_id,
    details: r.details,
    ip: r.ip,
    userAgent: r.user_agent,
  }));
}
