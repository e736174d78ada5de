import pg from 'pg';

// Return numeric and bigint as JS numbers/strings consistently: bigint counts fit in a double here.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));
// Dates stay 'YYYY-MM-DD' strings: no timezone shifts on a calendar date.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process; the next checkout reconnects.
  pool.on('error', (err) => console.error('[db] idle client error:', err.message));
  return pool;
}

/** Runs fn in a transaction on one client: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Double-quotes an identifier; identifiers only ever come from dataset declarations. */
export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

// Data exceptions, constraint violations, and errors raised by triggers: running the statement
// again would fail the same way. Anything else (connections, deadlocks, timeouts) may pass later.
const PERMANENT_SQLSTATE = /^(22|23|P0)/;

/** True for database errors that retrying cannot fix. */
export const isPermanentDbError = (err: unknown): err is pg.DatabaseError =>
  err instanceof pg.DatabaseError && typeof err.code === 'string' && PERMANENT_SQLSTATE.test(err.code);
