import os from 'node:os';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { createKey, keyNameSchema, keyScopesSchema, listKeys, revokeKey, type KeyInfo } from '../api/keys';
import { loadConfig, requireDatabaseUrl } from '../config';
import { migrate } from '../db/migrate';
import { createPool, type Pool } from '../db/pool';
import { apiClient } from './api';
import { CliError, ExitCode } from './http';

export const KEYS_USAGE = `  batchflow keys create --name NAME --scopes read,run,approve,admin [--database]
  batchflow keys list [--revoked] [--database]
  batchflow keys revoke KEY_ID [--database]
        through the API with an admin key; --database works on DATABASE_URL directly, without a key
        (the operator's way to make the first key, or a new one when every admin key is lost)`;

/** The same three operations through the API or on the database directly. */
interface KeyStore {
  create(spec: { name: string; scopes: string[] }): Promise<KeyInfo & { key: string }>;
  list(includeRevoked: boolean): Promise<KeyInfo[]>;
  revoke(id: string): Promise<KeyInfo>;
}

function throughApi(): KeyStore {
  const api = apiClient();
  return {
    create: async (spec) => (await api.request<KeyInfo & { key: string }>('POST', '/keys', spec)).body,
    list: async (includeRevoked) => (await api.request<{ keys: KeyInfo[] }>('GET', `/keys?revoked=${includeRevoked}`)).body.keys,
    revoke: async (id) => (await api.request<KeyInfo>('DELETE', `/keys/${encodeURIComponent(id)}`)).body,
  };
}

function onDatabase(pool: Pool): KeyStore {
  // Whoever holds DATABASE_URL: named by their OS user in created_by and the audit log.
  const actor = { name: `${os.userInfo().username} (database)`, userAgent: 'batchflow keys --database' };
  const parse = <S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new CliError(`${what}: ${parsed.error.issues[0]?.message}`, ExitCode.Usage);
    return parsed.data;
  };
  return {
    create: (spec) => createKey(pool, actor, { name: parse(keyNameSchema, spec.name, '--name'), scopes: parse(keyScopesSchema, spec.scopes, '--scopes') }),
    list: (includeRevoked) => listKeys(pool, { includeRevoked }),
    async revoke(id) {
      const key = await revokeKey(pool, actor, id);
      if (!key) throw new CliError(`no key ${id}`, ExitCode.Usage);
      return key;
    },
  };
}

export async function keysCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { name: { type: 'string' }, scopes: { type: 'string' }, revoked: { type: 'boolean' }, database: { type: 'boolean' } },
  });
  const [action, id] = positionals;
  if (!values.database) return run(throughApi(), action, id, values);
  const databaseUrl = requireDatabaseUrl(loadConfig());
  await migrate(databaseUrl);
  const pool = createPool(databaseUrl, 1);
  try {
    return await run(onDatabase(pool), action, id, values);
  } finally {
    await pool.end();
  }
}

async function run(store: KeyStore, action: string | undefined, id: string | undefined, values: { name?: string; scopes?: string; revoked?: boolean }): Promise<number> {
  switch (action) {
    case 'create': {
      if (!values.name || !values.scopes) throw new CliError(`usage:\n${KEYS_USAGE}`, ExitCode.Usage);
      const created = await store.create({ name: values.name, scopes: values.scopes.split(',').map((s) => s.trim()) });
      console.error(`created key ${created.id} "${created.name}" (${created.scopes.join(', ')}); it is shown this once, keep it now:`);
      console.log(created.key);
      return ExitCode.Success;
    }
    case 'list': {
      const keys = await store.list(values.revoked ?? false);
      console.table(keys.map((k) => ({ id: k.id, name: k.name, scopes: k.scopes.join(','), created: k.createdAt, by: k.createdBy, lastUsed: k.lastUsedAt ?? '', revoked: k.revokedAt ?? '' })));
      return ExitCode.Success;
    }
    case 'revoke': {
      if (!id) throw new CliError(`usage:\n${KEYS_USAGE}`, ExitCode.Usage);
      const key = await store.revoke(id);
      console.log(`revoked key ${key.id} "${key.name}"; requests with it are refused from now on`);
      return ExitCode.Success;
    }
    default:
      throw new CliError(`usage:\n${KEYS_USAGE}`, ExitCode.Usage);
  }
}
