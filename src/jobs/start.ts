import { createHash } from 'node:crypto';
import { jobKinds, runSearchAttributes, type JobKindName } from '.';

/** Identifies a run's kind and params: starting a runId again with other ones is refused. */
export const paramsDigest = (kind: string, params: unknown) => createHash('sha256').update(JSON.stringify([kind, params])).digest('hex');

/**
 * What a run starts with, whoever starts it (POST /runs, the CLI, a schedule): its workflow type,
 * its one input object, its search attributes and its memo. `startedBy` is the name of the API key
 * that started it (a schedule's runs have none: their schedule says where they came from).
 */
export function runStartOptions(kind: JobKindName, params: unknown, startedBy?: string) {
  return {
    workflowType: jobKinds[kind].workflowType,
    args: [{ params }],
    typedSearchAttributes: runSearchAttributes(kind, params, startedBy),
    memo: { kind, paramsDigest: paramsDigest(kind, params), ...(startedBy && { startedBy }) },
  };
}
