import { condition, defineSignal, isCancellation, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { ErrorCode } from '../errors';
import { searchAttributes } from '../jobs';
import { AWAITING_APPROVAL, durationMs, type ApprovalRecord, type Failure, type Preview } from '../jobs/run';
import type { RunTracker } from './run-tracker';

/** Lets a run that waits for confirmation go ahead; `by` is the approving key's name. */
export const approveSignal = defineSignal<[{ by?: string; comment?: string }?]>('approve');
/** Ends a run that waits for confirmation as cancelled, having changed nothing. */
export const rejectSignal = defineSignal<[{ by?: string; reason?: string }?]>('reject');

export { AWAITING_APPROVAL };

export type Decision = { approved: true; record: ApprovalRecord } | ({ approved: false; record?: ApprovalRecord } & Failure);

/** The decision as the result shows it: who, when (workflow time, so replay gives the same), what they said. */
const record = (decision: ApprovalRecord['decision'], by: string | undefined, comment: string | undefined): ApprovalRecord => ({
  decision,
  ...(by && { by }),
  at: new Date(Date.now()).toISOString(),
  ...(comment && { comment }),
});

/**
 * Shows the preview in the run's progress and waits for approve, reject, cancel or the deadline,
 * whichever comes first. Only approve lets the run change anything.
 */
export async function awaitApproval(tracker: RunTracker, preview: Preview, timeout: string): Promise<Decision> {
  let decision: Decision | undefined;
  setHandler(approveSignal, (a) => {
    decision ??= { approved: true, record: record('approved', a?.by, a?.comment) };
  });
  setHandler(rejectSignal, (r) => {
    decision ??= {
      approved: false,
      code: ErrorCode.Rejected,
      message: `rejected${r?.by ? ` by ${r.by}` : ''}${r?.reason ? `: ${r.reason}` : ''}; nothing was changed`,
      record: record('rejected', r?.by, r?.reason),
    };
  });
  const ms = durationMs(timeout);
  tracker.setAwaiting({ preview, approvalDeadline: new Date(Date.now() + ms).toISOString() });
  tracker.setStep(AWAITING_APPROVAL);
  upsertSearchAttributes([{ key: searchAttributes.status, value: AWAITING_APPROVAL }]);
  let inTime: boolean;
  try {
    inTime = await condition(() => decision !== undefined || tracker.cancelRequested, ms);
  } catch (err) {
    // Temporal's own cancel while waiting: the run ends cancelled like with the signal.
    if (!isCancellation(err)) throw err;
    tracker.requestCancel();
    inTime = true;
  }
  tracker.setAwaiting(undefined);
  if (decision) {
    if (decision.approved) upsertSearchAttributes([{ key: searchAttributes.status, value: 'running' }]);
    return decision;
  }
  if (inTime) return { approved: false, code: ErrorCode.Cancelled, message: 'cancelled while awaiting approval; nothing was changed' };
  return { approved: false, code: ErrorCode.ApprovalTimeout, message: `not approved within ${timeout}; nothing was changed` };
}
