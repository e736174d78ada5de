import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createKey, verifyKey } from '../api/keys';
import type { Pool } from '../db/pool';

export const LOCAL_KEY_NAME = 'local-admin';

/**
 * `npm start` needs no set-up: the first start creates an admin key and keeps it in the data
 * directory (mode 0600), where the CLI on the same machine finds it. A later start reuses it while
 * the database still knows it (a new database, or a revoked key, gets a new one).
 */
export async function ensureLocalAdminKey(pool: Pool, file: string): Promise<{ created: boolean }> {
  const existing = await fs.readFile(file, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  const caller = existing ? await verifyKey(pool, existing) : undefined;
  if (caller?.scopes.includes('admin')) return { created: false };
  const { key } = await createKey(pool, { name: 'batchflow start' }, { name: LOCAL_KEY_NAME, scopes: ['admin'] });
  await fs.writeFile(file, `${key}\n`, { mode: 0o600 });
  // writeFile's mode applies only to a new file: an old one keeps its mode unless told.
  await fs.chmod(file, 0o600);
  return { created: true };
}

/** The key in the local key file, if there is one. */
export function readLocalKey(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
