import { z } from 'zod';
import type { CacheDataset, DatasetRegistry } from '../datasets';
import { checkTemplate, templateColumns } from '../upstream/urls';
import { datasetNameSchema, isCacheDataset, prefixIssues, withDataset } from './datasets';
import { checkFilter, filterSchema, isRelativeTime, type Filter, type Issue } from './filter';
import { approvalSchema, errorPolicySchema } from './run';

/** What a refresh counts as stale unless told otherwise: the seed's "last_updated < now() - 1 hour". */
export const DEFAULT_STALE_AFTER = '1 hour';

const responsePath = z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, 'must be a field name or a dotted path such as pricing.amount');
// RFC 9110 token characters.
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** Headers fetch sets itself. */
const RESERVED_HEADERS = ['host', 'content-length', 'content-type', 'connection', 'transfer-encoding'];
const secretName = z.string().regex(/^BATCHFLOW_SECRET_[A-Z0-9_]+$/, 'must name an environment variable of the worker, BATCHFLOW_SECRET_<NAME>; header values never travel in params');

/** The upstream service: how to ask it for rows, with which headers, and how its answer maps to columns. */
const upstreamSchema = z.strictObject({
  /** One request per row: a URL template whose {column} placeholders take the row's values, percent-encoded. */
  url: z.string().max(2_000).optional(),
  /** Where the record sits in a per-row response (`data`); the whole response by default. */
  itemPath: responsePath.optional(),
  /** One request for many rows, instead of `url`. */
  batch: z
    .strictObject({
      url: z.string().max(2_000),
      /** POST sends {"<idsParam>": [ids]} as JSON; GET sends ?<idsParam>=id1,id2,... */
      method: z.enum(['GET', 'POST']).default('POST'),
      idsParam: z.string().min(1).max(100).default('ids'),
      /** Ids per request. */
      size: z.number().int().min(1).max(1_000).default(100),
      /** Where the list of records sits in the response; the whole response by default. */
      itemsPath: responsePath.optional(),
      /** Where a record's id sits; by default the field mapped to the key column, or the key column's name or alias. */
      idField: responsePath.optional(),
    })
    .optional(),
  /** Header name → the worker's environment variable (BATCHFLOW_SECRET_<NAME>) that holds its value. */
  headers: z.record(z.string(), secretName).default({}),
  /** Response field (a dotted path for nested fields) → column; other columns are read from the field of their own name or alias. */
  mapping: z.record(responsePath, z.string()).optional(),
});

/** Parameters of a cache refresh: which rows, from which upstream, and how politely. */
export const cacheRefreshParamsSchema = z
  .strictObject({
    ...errorPolicySchema.shape,
    ...approvalSchema.shape,
    /** A cache dataset (declared with cache: true). */
    dataset: datasetNameSchema,
    /** Rows not refreshed for this long (or never) are stale: "1 hour", "30 minutes", "2 days". The default unless `where` or `force` is given. */
    staleAfter: z
      .string()
      .refine((s) => isRelativeTime(`now - ${s}`), 'must be a duration such as "1 hour", "30 minutes" or "2 days"')
      .optional(),
    /** Which rows to refresh, as a structured filter, instead of `staleAfter`. */
    where: filterSchema.optional(),
    /** Refresh every row, stale or not. */
    force: z.boolean().default(false),
    upstream: upstreamSchema,
    /** Requests in flight at once. */
    concurrency: z.number().int().min(1).max(256).default(8),
    /** Requests started per second, for the whole run; unlimited when absent. */
    ratePerSecond: z.number().positive().max(10_000).optional(),
    /** Per request, response body included. */
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    /** Tries per request (network errors, timeouts, 5xx, 429). */
    maxAttempts: z.number().int().min(1).max(10).default(3),
    /** The longest Retry-After a run waits for; a longer one fails the row. */
    maxRetryAfterSeconds: z.number().int().min(0).max(600).default(60),
    /** Stop the run when, over the last windowSeconds, at least minRequests requests were made and this share of them failed. */
    circuitBreaker: z
      .strictObject({
        errorRate: z.number().gt(0).max(1).default(0.5),
        minRequests: z.number().int().min(1).max(100_000).default(20),
        windowSeconds: z.number().int().min(1).max(3_600).default(30),
      })
      .default({ errorRate: 0.5, minRequests: 20, windowSeconds: 30 }),
    /** A 404: keep the row and set its last_status to not_found, or delete it. */
    onNotFound: z.enum(['flag', 'delete']).default('flag'),
    /** Rows per committed batch (a batch also commits after a second, whatever its size). */
    batchSize: z.number().int().min(1).max(10_000).default(500),
  })
  .superRefine((params, ctx) => {
    const selectors = [params.staleAfter !== undefined && 'staleAfter', params.where !== undefined && 'where', params.force && 'force'].filter(Boolean);
    if (selectors.length > 1) ctx.addIssue({ code: 'custom', path: [selectors[1] as string], message: `give one of staleAfter, where or force, not ${selectors.join(' and ')}` });
    for (const { path, message } of checkUpstreamShape(params.upstream)) ctx.addIssue({ code: 'custom', path: ['upstream', ...path], message });
  });
export type CacheRefreshParams = z.infer<typeof cacheRefreshParamsSchema>;
export type UpstreamParams = CacheRefreshParams['upstream'];

/** A cache refresh's params held against the declared datasets: a cache dataset, its filter, and the columns its upstream names. */
export function checkCacheRefreshParams(params: CacheRefreshParams, datasets: DatasetRegistry): Issue[] {
  return withDataset(datasets, params.dataset, ['dataset'], (dataset) => {
    if (!isCacheDataset(dataset)) {
      const caches = datasets.all().filter(isCacheDataset).map((d) => d.name);
      return [{ path: ['dataset'], message: `"${dataset.name}" is not a cache dataset (${caches.join(', ') || 'none is declared'})` }];
    }
    return [...(params.where === undefined ? [] : checkFilter(dataset, params.where, ['where'])), ...prefixIssues(checkUpstreamColumns(dataset, params.upstream), ['upstream'])];
  });
}

/** What is wrong with an upstream whatever the dataset: its URLs and headers. */
function checkUpstreamShape(upstream: UpstreamParams): Issue[] {
  const issues: Issue[] = [];
  const issue = (path: (string | number)[], message: string) => issues.push({ path, message });
  if ((upstream.url === undefined) === (upstream.batch === undefined)) issue([], 'give url (one request per row) or batch (one request for many rows)');
  if (upstream.url !== undefined) {
    const problem = checkTemplate(upstream.url);
    if (problem) issue(['url'], problem);
  }
  if (upstream.batch) {
    if (upstream.itemPath !== undefined) issue(['itemPath'], 'applies to url; a batch endpoint uses batch.itemsPath');
    const problem = checkTemplate(upstream.batch.url) ?? (templateColumns(upstream.batch.url).length > 0 ? 'takes no placeholders: the ids go in the query or the body' : undefined);
    if (problem) issue(['batch', 'url'], problem);
  }
  for (const header of Object.keys(upstream.headers)) {
    if (!HEADER_NAME.test(header)) issue(['headers', header], 'must be an HTTP header name');
    else if (RESERVED_HEADERS.includes(header.toLowerCase())) issue(['headers', header], 'is set by Batchflow itself');
  }
  return issues;
}

/** The columns an upstream names, held against the cache dataset: URL placeholders and the mapping's targets. */
function checkUpstreamColumns(dataset: CacheDataset, upstream: UpstreamParams): Issue[] {
  const issues: Issue[] = [];
  const issue = (path: (string | number)[], message: string) => issues.push({ path, message });
  for (const column of upstream.url === undefined ? [] : templateColumns(upstream.url)) {
    if (!dataset.isColumn(column)) issue(['url'], `{${column}} is not a column of ${dataset.name} (${dataset.columnNames.join(', ')})`);
  }
  const mapped = new Map<string, string>();
  for (const [field, column] of Object.entries(upstream.mapping ?? {})) {
    if (!dataset.isColumn(column)) issue(['mapping', field], `"${column}" is not a column of ${dataset.name} (${dataset.columnNames.join(', ')})`);
    else if (mapped.has(column)) issue(['mapping', field], `"${column}" is already fed by ${mapped.get(column)}`);
    mapped.set(column, field);
  }
  return issues;
}

/** The rows a run refreshes: every row (force), the caller's filter, or those not refreshed within staleAfter. */
export function staleRows(dataset: CacheDataset, params: Pick<CacheRefreshParams, 'force' | 'where' | 'staleAfter'>): Filter | undefined {
  if (params.force) return undefined;
  if (params.where) return params.where;
  const field = dataset.cache.refreshedAt;
  return { or: [{ field, op: 'is_null' }, { field, op: 'lt', value: `now - ${params.staleAfter ?? DEFAULT_STALE_AFTER}` }] };
}
