import { ErrorCode } from '../errors';
import type { Checkpoint, KeysetPosition } from '../jobs/checkpoint';
import { zeroCounts, type ApprovalRecord, type ErrorPolicy, type Failure, type Preview, type RunPlan, type RunResult, type StepState } from '../jobs/run';
import { awaitApproval } from './approval';
import { completeLoop, runCheckpointedLoop } from './batch-loop';
import { activityError } from './common';
import { completeRun, trackRun, type CarriedState, type RunTracker } from './run-tracker';

/** The input of a run that changes or deletes existing rows; all but params is set by the run itself. */
export interface PreviewedRunInput<Params> {
  params: Params;
  /** Settled before the first change; carried across continue-as-new so the run never re-plans. */
  plan?: RunPlan;
  /** "now" of a run whose planning continued as new (a dedupe's). */
  asOf?: string;
  approved?: boolean;
  /** Who approved it, carried with `approved` for the result. */
  approval?: ApprovalRecord;
  carried?: CarriedState<KeysetPosition>;
}

interface GuardParams extends ErrorPolicy {
  dryRun: boolean;
  requiresConfirmation: boolean;
  confirmationTimeout: string;
  maxRecords?: number;
  preconditions?: { minMatches?: number; maxMatches?: number };
}

/** Why a run must not start, from its preview: too many matches, or a precondition that fails. */
export function refusal(params: GuardParams, preview: Preview): Failure | undefined {
  const n = preview.matched;
  if (params.maxRecords !== undefined && n > params.maxRecords) {
    return { code: ErrorCode.MaxRecordsExceeded, message: `${n} rows match, more than maxRecords (${params.maxRecords}); nothing was changed` };
  }
  const { minMatches, maxMatches } = params.preconditions ?? {};
  if (minMatches !== undefined && n < minMatches) {
    return { code: ErrorCode.PreconditionFailed, message: `${n} rows match, fewer than preconditions.minMatches (${minMatches}); nothing was changed` };
  }
  if (maxMatches !== undefined && n > maxMatches) {
    return { code: ErrorCode.PreconditionFailed, message: `${n} rows match, more than preconditions.maxMatches (${maxMatches}); nothing was changed` };
  }
  return undefined;
}

/** How a previewed run goes on once planned: the step it shows, its batches, and where it continues. */
interface PreviewedLoop {
  /** The step shown while batches run ("updating", "deleting"). */
  working: string;
  input: PreviewedRunInput<unknown>;
  params: GuardParams;
  slice: (plan: RunPlan, cursor: Checkpoint<KeysetPosition> | undefined) => Promise<Checkpoint<KeysetPosition>>;
  continueAsNew: (next: PreviewedRunInput<unknown>) => Promise<never>;
  steps?: (plan: RunPlan, checkpoint: Checkpoint<KeysetPosition> | undefined, final: boolean) => Record<string, StepState>;
}

/**
 * Each target's state (a cleanup rule, an invoicing step) from the run's checkpoint: targets run
 * in order, so those before the current one are done. Without a checkpoint nothing was changed (a
 * dry run, a refusal, no approval): every target was skipped.
 */
export function targetStates(
  names: readonly string[],
  totals: readonly (number | undefined)[],
  plan: RunPlan,
  checkpoint: Checkpoint<KeysetPosition> | undefined,
  final: boolean,
): Record<string, StepState> {
  const at = checkpoint?.position ?? { step: 0, lastId: 0 };
  return Object.fromEntries(
    names.map((name, i): [string, StepState] => {
      const counts = { ...(checkpoint?.byStep?.[name] ?? zeroCounts()), total: totals[i] };
      const finished = !!checkpoint && (checkpoint.done || i < at.step || (i === at.step && at.lastId >= plan.bounds[i]!));
      if (finished) return [name, { status: counts.failed > 0 ? 'partial' : 'success', counts }];
      if (!final) return [name, { status: i === at.step ? 'running' : 'pending', counts }];
      if (checkpoint && i === at.step) return [name, { status: checkpoint.stop ? 'failed' : 'cancelled', counts, ...(checkpoint.stop && { error: checkpoint.stop }) }];
      return [name, { status: 'skipped', counts, reason: checkpoint ? 'the run stopped before this step' : 'nothing was changed (dry run, refused or not approved)' }];
    }),
  );
}

/**
 * The life of a run over existing rows, shared by bulk update and cleanup: plan (count, sample,
 * bounds), refuse if limits say so, stop there for a dry run, wait for approval if asked, then
 * the checkpointed loop of batches.
 */
export async function runPreviewed(opts: PreviewedLoop & { kind: string; plan: (asOf: string) => Promise<RunPlan> }): Promise<RunResult> {
  const tracker = trackRun<KeysetPosition>(opts.kind, opts.input.carried, opts.params.notify);
  let plan = opts.input.plan;
  if (!plan) {
    tracker.setStep('planning');
    try {
      plan = await opts.plan(new Date(Date.now()).toISOString());
    } catch (err) {
      // A plan refused for good (a filter the database rejects, an upstream the worker may not call) fails the run with its own code.
      const error = activityError(err);
      if (!error) throw err;
      return completeRun(tracker, { counts: zeroCounts(), error, errorSample: [], errorCount: 0, warnings: [] });
    }
  }
  return previewThenRun(tracker, plan, opts);
}

/**
 * What follows a plan, for any run that settles one first (a dedupe plans by finding its
 * duplicates): refuse if limits say so, stop for a dry run, wait for approval if asked, then the
 * checkpointed loop of batches.
 */
export async function previewThenRun(tracker: RunTracker, plan: RunPlan, opts: PreviewedLoop): Promise<RunResult> {
  const { input, params } = opts;
  const { preview, outputs, warnings = [] } = plan;
  const total = plan.total ?? preview.matched;
  tracker.setTotal(total);
  const unchanged = (end: { error?: Failure; cancelled?: Failure; approval?: ApprovalRecord }) =>
    completeRun(tracker, { counts: { ...zeroCounts(), total }, ...end, errorSample: [], errorCount: 0, warnings, outputs, preview, steps: opts.steps?.(plan, undefined, true) });

  const refused = refusal(params, preview);
  if (refused) return unchanged({ error: refused });
  if (params.dryRun) return unchanged({});
  let approval = input.approval;
  if (!(input.approved ?? !params.requiresConfirmation)) {
    const decision = await awaitApproval(tracker, preview, params.confirmationTimeout);
    if (!decision.approved) return unchanged({ cancelled: { code: decision.code, message: decision.message }, approval: decision.record });
    approval = decision.record;
  }

  tracker.setStep(opts.working);
  const outcome = await runCheckpointedLoop<KeysetPosition>({
    tracker,
    // Continued as new after approval, the tracker holds this loop's cursor; otherwise that of the planning.
    fresh: !input.plan,
    stepsOf: opts.steps && ((checkpoint) => opts.steps!(plan, checkpoint, false)),
    slice: (cursor) => opts.slice(plan, cursor),
    continueAsNew: (carried) => opts.continueAsNew({ params: input.params, plan, approved: true, approval, carried }),
  });
  return completeLoop(tracker, outcome, { preview, total, approval, outputs, warnings, steps: opts.steps && ((checkpoint) => opts.steps!(plan, checkpoint, true)) });
}
