import { Context } from '@temporalio/activity';
import { recordReader, valueAt, type CacheDataset, type DatasetRegistry } from '../datasets';
import { cacheQueries, type CacheKey } from '../db/cache';
import { isPermanentDbError, type Pool, type PoolClient } from '../db/pool';
import { rowQueries, type RowSelection } from '../db/row-queries';
import { ErrorCode, permanentFailure } from '../errors';
import { checkCacheRefreshParams, staleRows, type CacheRefreshParams } from '../jobs/cache-refresh';
import { isCacheDataset } from '../jobs/datasets';
import { keysetStart, type Checkpoint } from '../jobs/checkpoint';
import type { RowError, RunPlan, RunRef } from '../jobs/run';
import { createUpstreamClient, type Answer, type UpstreamClient } from '../upstream/client';
import { expandTemplate, originAllowed, templateOrigin, type OriginRule } from '../upstream/urls';
import { runSlice, type Applied } from './batch-runner';
import { requireDataset, requireValidParams } from './params';
import { refreshWindow, type RefreshPosition, type WindowBatch } from './refresh-window';
import { planRun } from './row-slices';

/** What the worker allows a refresh to reach: origins, and the secrets its headers may name. */
export interface UpstreamAccess {
  origins: readonly OriginRule[];
  secrets: ReadonlyMap<string, string>;
}

export interface CacheRefreshSliceInput {
  run: RunRef;
  params: CacheRefreshParams;
  plan: RunPlan;
  cursor?: Checkpoint<RefreshPosition>;
}

/** A stale row as the run reads it: its id, its key, and its values (for the URL template). */
interface StaleRow {
  id: number;
  key: CacheKey;
  values: Record<string, unknown>;
}

/** What the upstream's answer made of a row. */
type Settled = { kind: 'fresh'; values: Record<string, unknown> } | { kind: 'not_found' } | { kind: 'failed'; errors: RowError[] };

type RefreshBatch = WindowBatch<StaleRow, Settled>;

/**
 * The headers a run sends, their values from the worker's environment, after checking that the
 * upstream's origin is one the worker allows. Either failure ends the run before any request.
 */
function upstreamHeaders(params: CacheRefreshParams, access: UpstreamAccess): Record<string, string> {
  const origin = templateOrigin(params.upstream.batch?.url ?? params.upstream.url!);
  if (!originAllowed(access.origins, origin)) {
    const allowed = access.origins.length > 0 ? `it allows ${access.origins.map((o) => `${o.protocol}//${o.hostname}:${o.port}`).join(', ')}` : 'it allows none';
    throw permanentFailure(ErrorCode.UpstreamNotAllowed, `${origin} is not an upstream origin this worker may call (BATCHFLOW_UPSTREAM_ORIGINS: ${allowed})`);
  }
  return Object.fromEntries(
    Object.entries(params.upstream.headers).map(([header, variable]) => {
      const value = access.secrets.get(variable);
      if (value === undefined) throw permanentFailure(ErrorCode.InvalidParams, `params.upstream.headers.${header}: the worker has no environment variable ${variable}`);
      return [header, value];
    }),
  );
}

/** The cache dataset a run names; a run naming a dataset that is not (or no longer) one fails for good. */
function cacheDatasetOf(datasets: DatasetRegistry, params: CacheRefreshParams): CacheDataset {
  const dataset = requireDataset(datasets, params.dataset);
  if (!isCacheDataset(dataset)) throw permanentFailure(ErrorCode.InvalidParams, `params.dataset: "${dataset.name}" is not a cache dataset`);
  return dataset;
}

const selectionOf = (dataset: CacheDataset, params: CacheRefreshParams, asOf: string): RowSelection => ({ dataset, where: staleRows(dataset, params), asOf: new Date(asOf) });

/** How a refresh asks the upstream about rows and reads the answers into settlements. */
function asker(dataset: CacheDataset, params: CacheRefreshParams, client: UpstreamClient) {
  const { upstream } = params;
  const reader = recordReader(dataset, upstream.mapping);
  const keyColumn = dataset.cache.key;
  const failed = (row: StaleRow, problems: { field: string | null; code: ErrorCode; message: string }[]): Settled => ({
    kind: 'failed',
    errors: problems.map((p) => ({
      row: row.id,
      line: null,
      field: p.field,
      code: p.code,
      // The row by its id and its key in raw: messages reach the result's error sample, and so workflow history.
      message: `${p.field ? `${p.field} ` : ''}${p.message}`,
      raw: { [keyColumn]: row.key },
    })),
  });
  const fromRecord = (row: StaleRow, item: unknown): Settled => {
    const read = reader.read(item);
    if ('values' in read) return { kind: 'fresh', values: read.values };
    return failed(row, read.issues.map((i) => ({ ...i, code: i.field ? ErrorCode.ValidationFailed : ErrorCode.InvalidResponse })));
  };
  const answerFailed = (row: StaleRow, answer: Extract<Answer, { outcome: 'failed' }>) => failed(row, [{ field: null, code: answer.code, message: answer.message }]);

  if (upstream.url !== undefined) {
    const template = upstream.url;
    const itemPath = upstream.itemPath?.split('.');
    return async ([row]: StaleRow[]): Promise<Settled[] | 'withdrawn'> => {
      const answer = await client.request(expandTemplate(template, row!.values));
      switch (answer.outcome) {
        case 'withdrawn':
          return 'withdrawn';
        case 'not_found':
          return [{ kind: 'not_found' }];
        case 'failed':
          return [answerFailed(row!, answer)];
        case 'ok':
          return [fromRecord(row!, itemPath ? valueAt(answer.body, itemPath) : answer.body)];
      }
    };
  }

  const batch = upstream.batch!;
  const itemsPath = batch.itemsPath?.split('.');
  const idPath = batch.idField?.split('.');
  const keyOf = (item: unknown) => (idPath ? valueAt(item, idPath) : reader.keyOf(item));
  return async (rows: StaleRow[]): Promise<Settled[] | 'withdrawn'> => {
    const ids = rows.map((r) => r.key);
    let answer: Answer;
    if (batch.method === 'GET') {
      const url = new URL(batch.url);
      url.searchParams.set(batch.idsParam, ids.join(','));
      answer = await client.request(url.toString());
    } else {
      answer = await client.request(batch.url, { method: 'POST', body: JSON.stringify({ [batch.idsParam]: ids }) });
    }
    if (answer.outcome === 'withdrawn') return 'withdrawn';
    // A batch endpoint answering 404 is a wrong URL, not a statement about these rows.
    if (answer.outcome === 'not_found') answer = { outcome: 'failed', code: ErrorCode.UpstreamError, message: 'HTTP 404 from the batch endpoint' };
    if (answer.outcome === 'failed') return rows.map((row) => answerFailed(row, answer));
    const items = itemsPath ? valueAt(answer.body, itemsPath) : answer.body;
    if (!Array.isArray(items)) {
      return rows.map((row) => failed(row, [{ field: null, code: ErrorCode.InvalidResponse, message: `the batch response has no list of records at ${batch.itemsPath ?? 'its top level'}` }]));
    }
    const byKey = new Map(items.map((item) => [String(keyOf(item)), item]));
    // A record the answer leaves out is one the upstream does not have.
    return rows.map((row) => (byKey.has(String(row.key)) ? fromRecord(row, byKey.get(String(row.key))) : { kind: 'not_found' }));
  };
}

/** Writes a batch's answers in its transaction: fresh values, 404s flagged or deleted, failures flagged. */
async function storeBatch(db: PoolClient, dataset: CacheDataset, params: CacheRefreshParams, batch: RefreshBatch): Promise<Applied> {
  const fresh: { key: CacheKey; values: Record<string, unknown> }[] = [];
  const gone: CacheKey[] = [];
  const failed: CacheKey[] = [];
  let skipped = 0;
  for (const { row, settled } of batch.rows) {
    if (!settled) skipped += 1;
    else if (settled.kind === 'fresh') fresh.push({ key: row.key, values: settled.values });
    else if (settled.kind === 'not_found') gone.push(row.key);
    else failed.push(row.key);
  }
  try {
    const { stored, changed } = await cacheQueries.store(db, dataset, fresh);
    if (params.onNotFound === 'delete') await cacheQueries.remove(db, dataset, gone);
    else await cacheQueries.flag(db, dataset, gone, 'not_found');
    await cacheQueries.flag(db, dataset, failed, 'error');
    // A fresh row that is no longer there (deleted meanwhile) was not refreshed: skipped.
    return { succeeded: stored + gone.length, skipped: skipped + fresh.length - stored, refreshed: changed, unchanged: stored - changed, notFound: gone.length, errors: [], rejectedRows: 0 };
  } catch (err) {
    if (!isPermanentDbError(err)) throw err;
    throw permanentFailure(ErrorCode.BatchFailed, `the database refused a batch of ${batch.rows.length} ${dataset.name} rows (ids ${batch.rows[0]?.row.id}–${batch.rows.at(-1)?.row.id}): ${err.message}`);
  }
}

/** The stop of a run whose breaker opened: the failure rate, the last errors, what was done before. */
function unhealthy(client: UpstreamClient, params: CacheRefreshParams, fresh: number, skipped: number): { code: ErrorCode; message: string } {
  const { requests, rate } = client.breaker.state(Date.now());
  const { errorRate, minRequests, windowSeconds } = params.circuitBreaker;
  return {
    code: ErrorCode.UpstreamUnhealthy,
    message:
      `the upstream looks unhealthy: ${Math.round(rate * 100)}% of the last ${requests} requests failed ` +
      `(circuitBreaker: errorRate ${errorRate}, minRequests ${minRequests}, windowSeconds ${windowSeconds}); ` +
      `last errors: ${client.breaker.lastErrors.join('; ')}; ${fresh} rows refreshed before it opened, ${skipped} queued rows skipped`,
  };
}

export function createCacheRefreshActivities(deps: { pool: Pool; datasets: DatasetRegistry; sliceMs: number; upstream: UpstreamAccess }) {
  const { pool } = deps;
  return {
    /** Counts the stale rows and fixes the highest id the run may reach; refuses an upstream the worker does not allow. */
    async planCacheRefresh({ run, params, asOf }: { run: RunRef; params: CacheRefreshParams; asOf: string }): Promise<RunPlan> {
      requireValidParams(checkCacheRefreshParams(params, deps.datasets));
      upstreamHeaders(params, deps.upstream);
      return planRun(pool, run, async () => {
        const selection = selectionOf(cacheDatasetOf(deps.datasets, params), params, asOf);
        await rowQueries.analyzeIfStale(pool, selection.dataset);
        // Sample rows only when someone will look at them (a dry run, an approval); they are stored apart from workflow history.
        const sampleSize = params.dryRun || params.requiresConfirmation ? params.sampleSize : 0;
        const [{ matched, maxId }, sample] = await Promise.all([rowQueries.count(pool, selection), rowQueries.sample(pool, selection, sampleSize)]);
        return { plan: { asOf, preview: { matched }, bounds: [maxId] }, samples: { sample } };
      });
    },

    /** Refreshes stale rows from the run's checkpoint for about sliceMs, then hands back with every answer it paid for committed. */
    async cacheRefreshSlice({ run, params, plan, cursor }: CacheRefreshSliceInput): Promise<Checkpoint<RefreshPosition>> {
      const headers = upstreamHeaders(params, deps.upstream);
      const dataset = cacheDatasetOf(deps.datasets, params);
      const selection = selectionOf(dataset, params, plan.asOf);
      const upTo = plan.bounds[0]!;
      const deadline = Date.now() + deps.sliceMs;
      const cancelled = Context.current().cancellationSignal;
      return runSlice<RefreshPosition, RefreshBatch>({
        pool,
        run,
        // The window hands back itself at its deadline, once its answers are in.
        sliceMs: Number.POSITIVE_INFINITY,
        policy: params,
        cursor,
        initialPosition: keysetStart,
        batches(from) {
          const client = createUpstreamClient({ policy: params, headers, breaker: from.position.breaker });
          let fresh = (from.counts.refreshed ?? 0) + (from.counts.unchanged ?? 0);
          return refreshWindow<StaleRow, Settled>(
            {
              async readRows(after) {
                const page = await rowQueries.page(pool, selection, after, params.batchSize);
                const rows = page.filter((r) => Number(r[dataset.idColumn]) <= upTo);
                return {
                  rows: rows.map((values) => ({ id: Number(values[dataset.idColumn]), key: values[dataset.cache.key] as CacheKey, values })),
                  last: rows.length < params.batchSize,
                };
              },
              perRequest: params.upstream.batch?.size ?? 1,
              settle: asker(dataset, params, client),
              toBatch(rows, opensBreaker) {
                const errors = rows.flatMap((r) => (r.settled?.kind === 'failed' ? r.settled.errors : []));
                fresh += rows.filter((r) => r.settled?.kind === 'fresh').length;
                const skipped = rows.filter((r) => !r.settled).length;
                return {
                  rows,
                  errors,
                  dataset: dataset.name,
                  rejectedRows: rows.filter((r) => r.settled?.kind === 'failed').length,
                  ...(opensBreaker && { fatal: unhealthy(client, params, fresh, skipped) }),
                };
              },
              client,
              batchSize: params.batchSize,
              maxRows: Math.max(2 * params.batchSize, 4 * params.concurrency * (params.upstream.batch?.size ?? 1)),
              deadline,
              cancelled,
            },
            from.position,
          );
        },
        apply: (db, batch) => storeBatch(db, dataset, params, batch),
      });
    },
  };
}
