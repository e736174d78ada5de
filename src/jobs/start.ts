import { createHash } from 'node:crypto';
import { jobKinds, runSearchAttributes, type JobKindName } from '.';

/** Identifies a run's kind and params: starting a runId again with other ones is refused. */
export const paramsDigest = (kind: string, params: unknown) => createHash('sha256').update(JSON.stringify([kind, params])).digest('hex');

/**
 * What a run starts with, whoever starts it (POST /runs, the CLI, a schedule): its workflow type,
 * its one input object, its search attributes and its memo.
 */
export function runStartOptions(kind: JobKindName, params: unknown) {
  return {
    workflowType: jobKinds[kind].workflowType,
    args: [{ params }],
    typedSearchAttributes: runSearchAttributes(kind, params),
    memo: { kind, paramsDigest: paramsDigest(kind, params) },
  };
}
