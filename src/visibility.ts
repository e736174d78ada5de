import { createHash } from 'node:crypto';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers.js';
import { z } from 'zod';
import { jobKindNames, scheduledBy, searchAttributes } from './jobs';
import { AWAITING_APPROVAL, listedStatusSchema, type ListedStatus, type RunListItem } from './jobs/run';

/**
 * Runs as Temporal's visibility lists them (the Batchflow search attributes on each execution),
 * a page at a time. Visibility is eventually consistent: a run shows up, and its status changes,
 * a moment after it happens.
 */

export const runFilterSchema = z.object({
  kind: z.enum(jobKindNames).optional().describe('Only runs of this job kind'),
  dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a dataset name').optional().describe('Only runs of this dataset'),
  status: listedStatusSchema.optional().describe('Only runs in this status (running and awaiting_approval: runs still going)'),
  startedBy: z.string().optional().describe('Only runs started with the API key of this name (the BatchflowStartedBy search attribute)'),
  scheduleId: z.string().max(200).optional().describe('Only runs this schedule started'),
  from: z.iso.datetime({ offset: true }).optional().describe('Only runs started at or after this time (ISO 8601)'),
  to: z.iso.datetime({ offset: true }).optional().describe('Only runs started before this time (ISO 8601)'),
});
export type RunFilter = z.infer<typeof runFilterSchema>;

// Visibility queries take string literals; values are already validated, quotes are escaped anyway.
const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** How each status reads in a visibility query: a run that is still going must also be running in Temporal. */
function statusClause(status: ListedStatus): string {
  switch (status) {
    case 'running':
    case AWAITING_APPROVAL:
      return `ExecutionStatus = 'Running' AND BatchflowStatus = ${quote(status)}`;
    case 'failed':
      // Terminated and timed-out runs never reached their own end, which sets the status.
      return `(BatchflowStatus = 'failed' OR ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut'))`;
    default:
      return `BatchflowStatus = ${quote(status)}`;
  }
}

/** The visibility query for a filter: Batchflow runs only, each once (not the executions a continue-as-new closed). */
export function visibilityQuery(filter: RunFilter): string {
  return [
    'BatchflowKind IS NOT NULL',
    "ExecutionStatus != 'ContinuedAsNew'",
    filter.kind && `BatchflowKind = ${quote(filter.kind)}`,
    filter.dataset && `BatchflowDataset = ${quote(filter.dataset)}`,
    filter.startedBy && `${searchAttributes.startedBy.name} = ${quote(filter.startedBy)}`,
    filter.scheduleId && `${scheduledBy.id.name} = ${quote(filter.scheduleId)}`,
    filter.status && statusClause(filter.status),
    filter.from && `StartTime >= ${quote(new Date(filter.from).toISOString())}`,
    filter.to && `StartTime < ${quote(new Date(filter.to).toISOString())}`,
  ]
    .filter(Boolean)
    .join(' AND ');
}

const CLOSED_STATUS: Record<string, ListedStatus> = { COMPLETED: 'success', CANCELLED: 'cancelled' };

function listedRun(w: WorkflowExecutionInfo): RunListItem {
  const attributes = w.typedSearchAttributes;
  const recorded = attributes.get(searchAttributes.status) as ListedStatus | undefined;
  const going = recorded === 'running' || recorded === AWAITING_APPROVAL;
  // A run that ended without reaching its own end (terminated, timed out) still says running.
  const status = w.status.name === 'RUNNING' ? (recorded ?? 'running') : recorded && !going ? recorded : (CLOSED_STATUS[w.status.name] ?? 'failed');
  const scheduledAt = attributes.get(scheduledBy.startTime);
  return {
    runId: w.workflowId,
    kind: attributes.get(searchAttributes.kind),
    dataset: attributes.get(searchAttributes.dataset),
    scheduleId: attributes.get(scheduledBy.id),
    ...(scheduledAt && { scheduledAt: scheduledAt.toISOString() }),
    status,
    startedBy: attributes.get(searchAttributes.startedBy),
    startTime: w.startTime.toISOString(),
    closeTime: w.closeTime?.toISOString() ?? null,
  };
}

/** A page token that is not one of ours for this filter (from another filter, or made up). */
export class BadPageTokenError extends Error {}

// Page tokens start with a digest of the query they page through: the server would take minutes of
// retries to refuse a token that is not its own, and could misread one from another query.
const TAG_BYTES = 8;
const queryTag = (query: string) => createHash('sha256').update(query).digest().subarray(0, TAG_BYTES);
const encodeToken = (query: string, token: Uint8Array) => Buffer.concat([queryTag(query), token]).toString('base64url');
function decodeToken(query: string, pageToken: string): Buffer {
  const bytes = Buffer.from(pageToken, 'base64url');
  if (bytes.length <= TAG_BYTES || !bytes.subarray(0, TAG_BYTES).equals(queryTag(query))) throw new BadPageTokenError('not a page token for this filter');
  return bytes.subarray(TAG_BYTES);
}

/** One page of a visibility query's runs, and visibility's token for the next (none after the last). */
async function queryPage(client: Client, query: string, pageSize: number, token?: Uint8Array): Promise<{ runs: RunListItem[]; next?: Uint8Array }> {
  const { namespace, loadedDataConverter } = client.options;
  const response = await client.workflowService.listWorkflowExecutions({ namespace, query, pageSize, nextPageToken: token });
  const runs = await Promise.all(response.executions.map(async (raw) => listedRun(await executionInfoFromRaw(raw, loadedDataConverter, raw, namespace))));
  const next = response.nextPageToken;
  return { runs, ...(next && next.length > 0 && { next }) };
}

/**
 * One page of runs. The page token is visibility's own, tagged with the query and base64url-encoded:
 * pass it back with the same filter for the next page; none comes back after the last page.
 */
export async function listRunsPage(client: Client, filter: RunFilter, page: { pageSize: number; pageToken?: string }): Promise<{ runs: RunListItem[]; nextPageToken: string | null }> {
  const query = visibilityQuery(filter);
  const { runs, next } = await queryPage(client, query, page.pageSize, page.pageToken ? decodeToken(query, page.pageToken) : undefined);
  return { runs, nextPageToken: next ? encodeToken(query, next) : null };
}

/** Every run a visibility query matches (page after page), up to `limit`. */
export async function listRuns(client: Client, query: string, limit = Infinity): Promise<RunListItem[]> {
  const runs: RunListItem[] = [];
  let token: Uint8Array | undefined;
  do {
    const page = await queryPage(client, query, Math.min(1000, limit - runs.length), token);
    runs.push(...page.runs);
    token = page.next;
  } while (token && runs.length < limit);
  return runs.slice(0, limit);
}
