import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { InjectOptions } from 'fastify';
import { buildApp } from '../../src/api/app';
import { createKey, type KeyScope } from '../../src/api/keys';
import type { RunView } from '../../src/api/runs';
import type { RowError } from '../../src/jobs/run';
import { loadConfig, requireDatabaseUrl, type Config } from '../../src/config';
import type { Checkpoint } from '../../src/jobs/checkpoint';
import { codeDatasets, loadDatasets } from '../../src/datasets';
import { createPool, type Pool } from '../../src/db/pool';
import { runState } from '../../src/db/queries';
import { createObjectAccess } from '../../src/storage';
import { connectTemporal } from '../../src/temporal';
import { createWorker } from '../../src/worker';
import type { Activities } from '../../src/activities';
import { checkResponses } from './openapi';

/**
 * The one stack helper: the services come from the environment scripts/test.ts sets up (a real
 * Temporal dev server, Postgres and MinIO). Each test gets its own task queue and run ids.
 */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Where workers may import local files from, by default. */
export const importsDir = () => path.join(loadConfig().dataDir, 'imports');

/**
 * Tests approve runs they started themselves and poll many times a second: self-approval is allowed
 * and the rate limit is off unless a test sets them (the auth tests do).
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...process.env, TASK_QUEUE: uniqueId('tq'), BATCHFLOW_SLICE_SECONDS: '5', BATCHFLOW_ALLOW_SELF_APPROVAL: 'true', BATCHFLOW_RATE_LIMIT: '0', ...overrides });
}

/** A request with the given key, or none (null); a request that sets its own authorization header keeps it. */
function withKey(opts: InjectOptions | string, key: string | null): InjectOptions {
  const request = typeof opts === 'string' ? { url: opts } : opts;
  const headers: NonNullable<InjectOptions['headers']> = { ...request.headers };
  if (key !== null && !('authorization' in headers)) headers.authorization = `Bearer ${key}`;
  return { ...request, headers };
}

/**
 * What a test file needs: a pool, a Temporal client and the API app, all closed by close().
 * `app.inject` sends an admin key (BATCHFLOW_API_KEY, which scripts/test.ts creates in the test
 * database); `injectAs` sends another key, or none. Every answer the app gives is held to its
 * OpenAPI document: close() fails with any that broke it.
 */
export async function openStack(config: Config = testConfig()) {
  const pool = createPool(requireDatabaseUrl(config), 4);
  const temporal = await connectTemporal(config);
  const objects = createObjectAccess(config);
  const app = buildApp({ client: temporal.client, pool, config, datasets: loadDatasets(config.datasetDirs, codeDatasets) });
  const contract = checkResponses(app);
  const adminKey = config.api.key;
  if (!adminKey) throw new Error('BATCHFLOW_API_KEY is not set: run the tests with npm test (scripts/test.ts creates the key)');
  const inject = app.inject.bind(app);
  app.inject = ((opts: InjectOptions | string) => inject(withKey(opts, adminKey))) as typeof app.inject;
  return {
    config,
    pool,
    client: temporal.client,
    app,
    objects,
    adminKey,
    /** A request with `key` (null: without any). */
    injectAs: (key: string | null, opts: InjectOptions) => inject(withKey(opts, key)),
    /** A new key in the test database (name it with uniqueId unless the name matters). */
    async createKey(name: string, scopes: KeyScope[]) {
      return (await createKey(pool, { name: 'test' }, { name, scopes })).key;
    },
    async close() {
      await app.close();
      await temporal.close();
      await pool.end();
      objects.s3?.client.destroy();
      if (contract.problems.length > 0) throw new Error(`API answers that break its OpenAPI document:\n  ${contract.problems.join('\n  ')}`);
    },
  };
}
export type Stack = Awaited<ReturnType<typeof openStack>>;

let runtimeInstalled = false;
/** In-process workers log warnings only: the runtime's default would print every run's story into the test output. */
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** An in-process worker on the config's task queue. */
export async function startWorker(config: Config, wrapActivities?: (activities: Activities) => Partial<Activities>) {
  quietRuntime();
  const { worker, run } = await createWorker(config, { wrapActivities });
  const running = run();
  return {
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

/**
 * An in-process worker whose activities the test wraps (to hold a slice back, or to fail it):
 * the real activities on the real services, with a hook around them.
 */
export const startWorkerWith = (config: Config, wrap: (activities: Activities) => Partial<Activities>) => startWorker(config, wrap);

/** Holds back the `n`-th call of a wrapped activity until release(). */
export function callGate(n: number) {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let calls = 0;
  return {
    async pass() {
      if (++calls === n) await held;
    },
    release,
    get reached() {
      return calls >= n;
    },
  };
}

/**
 * Cancels a run while its second slice is held back by `gate` (so that it cannot finish first):
 * once a batch is done and the gate reached, `whileHeld` looks at the run, the cancel is sent,
 * and the slice let go. Returns the ended run.
 */
export async function cancelMidway(stack: Stack, runId: string, gate: ReturnType<typeof callGate>, whileHeld: () => Promise<void>): Promise<RunView> {
  await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) > 0 && gate.reached);
  await whileHeld();
  const res = await stack.app.inject({ method: 'POST', url: `/runs/${runId}/cancel` });
  if (res.statusCode !== 202) throw new Error(`POST /runs/${runId}/cancel: ${res.statusCode} ${res.body}`);
  await waitForRun(stack, runId, (r) => r.progress?.cancelRequested === true);
  gate.release();
  return waitForRun(stack, runId);
}

/** Registers before/after hooks that open a stack with an in-process worker for a test suite (configured with `env` on top of the test's). */
export function useStackWithWorker(env: Record<string, string> = {}): { stack: Stack } {
  const fixture = {} as { stack: Stack; worker: Awaited<ReturnType<typeof startWorker>> };
  before(async () => {
    fixture.stack = await openStack(testConfig(env));
    fixture.worker = await startWorker(fixture.stack.config);
  });
  after(async () => {
    await fixture.worker.stop();
    await fixture.stack.close();
  });
  return fixture;
}

/**
 * A Batchflow process (`worker`, `api`, `start`) of its own, so a test can kill it for real. It
 * serves no metrics unless `env` gives it ports (the defaults would collide with other processes);
 * its log goes to `stdout` (ignored unless asked for).
 */
export function spawnBatchflow(
  command: 'worker' | 'api' | 'start',
  config: Config,
  opts: { args?: string[]; env?: Record<string, string>; stdout?: 'ignore' | 'pipe' } = {},
): ChildProcess & { exited: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), command, ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: {
      ...process.env,
      TASK_QUEUE: config.temporal.taskQueue,
      DATABASE_URL: config.databaseUrl,
      BATCHFLOW_SLICE_SECONDS: String(config.sliceMs / 1000),
      BATCHFLOW_API_METRICS_PORT: '0',
      BATCHFLOW_WORKER_METRICS_PORT: '0',
      BATCHFLOW_TEMPORAL_METRICS_PORT: '0',
      ...opts.env,
    },
    stdio: ['ignore', opts.stdout ?? 'ignore', 'inherit'],
  });
  return Object.assign(child, { exited: new Promise<number | null>((resolve) => child.once('exit', resolve)) });
}

/** A worker in its own process, so a test can kill it for real (with `env` on top of the test's). */
export const spawnWorker = (config: Config, env: Record<string, string> = {}) => spawnBatchflow('worker', config, { env });

/** Runs the CLI against the API at `apiUrl` (stack.app.listen gives one); its exit code and output. */
export function runCli(apiUrl: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), ...args], { cwd: repoRoot, env: { ...process.env, BATCHFLOW_API_URL: apiUrl } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** A run's row errors through GET /runs/:id/errors (the first page), raw input included. */
export async function rowErrors(stack: Stack, runId: string): Promise<RowError[]> {
  return (await stack.app.inject({ method: 'GET', url: `/runs/${runId}/errors?limit=1000` })).json<{ errors: RowError[] }>().errors;
}

/** A file in the directory workers import local files from ($BATCHFLOW_DATA_DIR/imports). */
export async function writeFixture(name: string, content: string | Buffer): Promise<string> {
  const dir = importsDir();
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `${randomUUID().slice(0, 8)}-${name}`);
  await fs.writeFile(file, content);
  return file;
}

/** A users CSV with `count` valid rows whose emails start with `prefix`. */
export function usersCsv(prefix: string, count: number, from = 1): string {
  const lines = ['email,name,role,status,signup_date'];
  for (let i = from; i < from + count; i++) lines.push(`${prefix}.${i}@example.com,User ${i},user,active,2024-01-${String((i % 28) + 1).padStart(2, '0')}`);
  return lines.join('\n') + '\n';
}

export async function countUsers(pool: Pool, prefix: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE email LIKE $1', [`${prefix}.%`]);
  return rows[0]!.n;
}

/** Starts a run through the API and returns its id. */
export async function startRun(stack: Stack, kind: string, params: object, runId = uniqueId(kind)): Promise<string> {
  const res = await stack.app.inject({ method: 'POST', url: '/runs', payload: { kind, params, runId } });
  if (res.statusCode !== 202) throw new Error(`POST /runs: ${res.statusCode} ${res.body}`);
  return runId;
}

export async function getRun(stack: Stack, runId: string): Promise<RunView> {
  const res = await stack.app.inject({ method: 'GET', url: `/runs/${runId}` });
  if (res.statusCode !== 200) throw new Error(`GET /runs/${runId}: ${res.statusCode} ${res.body}`);
  return res.json<RunView>();
}

/** Polls a run through the API until it leaves `running` or `until` holds. */
export async function waitForRun(stack: Stack, runId: string, until: (run: RunView) => boolean = (r) => r.status !== 'running', timeoutMs = 180_000): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await getRun(stack, runId);
    if (until(run)) return run;
    if (run.status !== 'running') throw new Error(`run ${runId} ended ${run.status} before the awaited state: ${JSON.stringify(run.error ?? run.result?.error)}`);
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export type { Client };

/** The checkpoint a run last committed (its newest execution's), read from Postgres. */
export async function storedCheckpoint<P>(pool: Pool, runId: string): Promise<Checkpoint<P> | undefined> {
  const execution = await runState.latestExecution(pool, runId);
  return execution === undefined ? undefined : (await runState.readCheckpoint<Checkpoint<P>>(pool, execution))?.checkpoint;
}

/** An import of `rows` fresh users under `prefix` that ended with each row loaded exactly once. */
export async function assertImportedOnce(stack: Stack, run: RunView, prefix: string, rows: number): Promise<void> {
  assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
  const c = run.result!.counts;
  assert.deepEqual({ processed: c.processed, succeeded: c.succeeded, inserted: c.inserted, updated: c.updated, failed: c.failed }, { processed: rows, succeeded: rows, inserted: rows, updated: 0, failed: 0 });
  assert.equal(await countUsers(stack.pool, prefix), rows);
  assert.equal(run.result!.errorCount, 0, 'no row was mistaken for a duplicate of itself on resume');
}

/** The file a finished run wrote, through GET /runs/:id/download (following a redirect to S3). */
export async function download(stack: Stack, runId: string, query = ''): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  const res = await stack.app.inject({ method: 'GET', url: `/runs/${runId}/download${query}` });
  if (res.statusCode !== 302) return { status: res.statusCode, body: res.rawPayload, headers: res.headers };
  const fetched = await fetch(res.headers.location as string);
  return { status: fetched.status, body: Buffer.from(await fetched.arrayBuffer()), headers: Object.fromEntries(fetched.headers) };
}

/**
 * Inserts `count` users whose emails start with `prefix`, in id order; statuses cycle through
 * active, pending, inactive unless given. Returns their ids in order.
 */
export async function seedUsers(pool: Pool, prefix: string, count: number, opts: { status?: string } = {}): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO users (email, name, status, signup_date, updated_at)
     SELECT $1 || '.' || g || '@example.com', 'User ' || g, coalesce($3, (ARRAY['active', 'pending', 'inactive'])[1 + g % 3]), DATE '2024-01-01' + (g % 300), TIMESTAMPTZ '2020-01-01'
     FROM generate_series(1, $2::int) g ORDER BY g RETURNING id`,
    [prefix, count, opts.status ?? null],
  );
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

/** A filter matching the users a test seeded with `prefix`. */
export const ownUsers = (prefix: string) => ({ field: 'email', op: 'starts_with', value: `${prefix}.` });

/** Statuses of a test's users, counted. */
export async function statusCounts(pool: Pool, prefix: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM users WHERE email LIKE $1 GROUP BY status', [`${prefix}.%`]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Every string a value holds, payload bytes decoded as UTF-8 (JSON payloads are UTF-8 text). */
function texts(value: unknown, out: string[]): void {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) texts(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) texts(v, out);
}

/**
 * The text of a workflow's whole history, every execution of a continue-as-new chain included,
 * payloads decoded: a test plants a marker in a run's input and checks it is not in here.
 */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  const out: string[] = [];
  let runId: string | undefined;
  do {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    texts(history, out);
    runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  } while (runId);
  return out.join('\n');
}

/**
 * Inserts `count` product_cache rows with ids `<prefix>-1`, `<prefix>-2`, ...: last refreshed
 * `age` ago (a Postgres interval) with old values, or never (age null: pending, no values yet).
 * Returns their product ids in id order.
 */
export async function seedProductCache(pool: Pool, prefix: string, count: number, opts: { age?: string | null; from?: number } = {}): Promise<string[]> {
  const age = opts.age === undefined ? '2 hours' : opts.age;
  const { rows } = await pool.query<{ product_id: string }>(
    `INSERT INTO product_cache (product_id, name, price, currency, last_updated, last_status)
     SELECT $1 || '-' || g, CASE WHEN $3::interval IS NOT NULL THEN 'Old name ' || g END, CASE WHEN $3::interval IS NOT NULL THEN 1 END,
            CASE WHEN $3::interval IS NOT NULL THEN 'USD' END, now() - $3::interval, CASE WHEN $3::interval IS NULL THEN 'pending' ELSE 'ok' END
     FROM generate_series($4::int, $4::int + $2::int - 1) g ORDER BY g RETURNING product_id`,
    [prefix, count, age, opts.from ?? 1],
  );
  return rows.map((r) => r.product_id);
}

/** A filter for a test's own product_cache rows that are stale (never refreshed, or over an hour ago). */
export const ownStaleProducts = (prefix: string) => ({
  and: [
    { field: 'product_id', op: 'starts_with', value: `${prefix}-` },
    { or: [{ field: 'last_updated', op: 'is_null' }, { field: 'last_updated', op: 'lt', value: 'now - 1 hour' }] },
  ],
});
