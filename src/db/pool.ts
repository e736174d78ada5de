import pg from 'pg';

// Return numeric and bigint as JS numbers/strings consistently: bigint counts fit in a double here.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));
// Dates stay 'YYYY-MM-DD' strings: no timezone shifts on a calendar date.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// A connection attempt that gets no answer (a network cut, a failover in progress) fails after
// this instead of waiting forever: the activity retries, /health answers degraded.
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * A client whose connection breaks (Postgres restarted, a failover, a dropped connection) emits
 * 'error', and an 'error' event nobody listens to ends the process. With a listener the error
 * surfaces where it matters instead: the query in flight, or the next one, fails (and with it the
 * batch's transaction, so the slice fails and is retried), and the pool discards the client.
 */
const onClientError = (err: Error) => console.error(`[db] connection lost: ${err.message}`);

/**
 * A pool of connections. `lockTimeoutMs` bounds how long any statement waits for a lock (Postgres's
 * lock_timeout): a batch that holds row locks while it waits for the batch before it to commit can
 * otherwise end up in a cycle with another run's batch that Postgres cannot see (one of the two
 * waits in the runner, not in Postgres); past the timeout the statement fails and is retried.
 */
export function createPool(connectionString: string, max = 10, opts: { lockTimeoutMs?: number } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...(opts.lockTimeoutMs !== undefined && { options: `-c lock_timeout=${opts.lockTimeoutMs}` }),
  });
  // The pool listens on idle clients itself and re-emits their errors here; the client's own
  // listener has logged them. Checked-out clients (a transaction, a COPY) have only their own.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', onClientError));
  return pool;
}

/** A single connection outside any pool (migrations, set-up), with its 'error' event handled too. */
export async function connectClient(config: string | pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(typeof config === 'string' ? { connectionString: config, connectionTimeoutMillis: CONNECT_TIMEOUT_MS } : config);
  client.on('error', onClientError);
  await client.connect();
  return client;
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

/**
 * SQLSTATE classes of errors about the rows a statement wrote or read: data exceptions (22),
 * cardinality (21), constraint violations (23), triggered data change and check option
 * violations (27, 44) and errors raised by triggers (P0). The same rows fail the same way again.
 */
const ROW_REFUSAL = /^(21|22|23|27|44|P0)/;
/**
 * Classes no retry can fix either, because they are about the database itself: a feature not
 * supported (0A), authorization (28), an SQL routine (2F), a missing database or schema (3D, 3F),
 * a missing column or table, a missing privilege or bad syntax (42), a program limit (54). Anything
 * else (connections 08, rollbacks such as deadlocks 40, resources 53, lock timeouts 55, a shutdown
 * 57, I/O 58, internal XX) may pass later and is retried.
 */
const PERMANENT = /^(0A|28|2F|3D|3F|42|54)/;

const sqlstate = (err: unknown): string | undefined => (err instanceof pg.DatabaseError && typeof err.code === 'string' ? err.code : undefined);

/** True for database errors that refuse the rows themselves (a constraint, a trigger): the rows can be reported. */
export const isRowRefusal = (err: unknown): err is pg.DatabaseError => ROW_REFUSAL.test(sqlstate(err) ?? '');

/** True for database errors that retrying cannot fix: row refusals and errors about the database itself. */
export const isPermanentDbError = (err: unknown): err is pg.DatabaseError => {
  const code = sqlstate(err) ?? '';
  return ROW_REFUSAL.test(code) || PERMANENT.test(code);
};
