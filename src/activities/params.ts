import type { Dataset, DatasetRegistry } from '../datasets';
import { ErrorCode, permanentFailure } from '../errors';
import { describeIssues } from '../jobs/datasets';
import type { Issue } from '../jobs/filter';

/**
 * A run's params as its first activity sees them: held against the declared datasets again (the
 * workflow checked only their shape), so a run started by any client, or one that outlived a
 * change of declarations, fails at once with the reason instead of halfway.
 */
export function requireValidParams(issues: readonly Issue[]): void {
  if (issues.length > 0) throw permanentFailure(ErrorCode.InvalidParams, describeIssues(issues));
}

/** The declared dataset of that name; a run naming another one fails for good. */
export function requireDataset(datasets: DatasetRegistry, name: string): Dataset {
  const dataset = datasets.get(name);
  if (!dataset) throw permanentFailure(ErrorCode.InvalidParams, `params.dataset: "${name}" is not a declared dataset (${datasets.names.join(', ')})`);
  return dataset;
}
