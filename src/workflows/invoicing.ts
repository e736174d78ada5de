import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { invoicingParamsSchema, invoicingSteps, previousMonth } from '../jobs/invoicing';
import type { RunResult } from '../jobs/run';
import { currentRun, nominalTime, parseInput, sliceActivityOptions } from './common';
import { runPreviewed, targetStates, type PreviewedRunInput } from './previewed-run';

export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';

export type InvoicingWorkflowInput = PreviewedRunInput<z.input<typeof invoicingParamsSchema>>;

const { planInvoicing, invoicingSlice } = proxyActivities<Activities>(sliceActivityOptions);

/**
 * Bills a month: usage per customer → draft invoices → issued, numbered invoices → PDFs in the
 * object store → emails, each step in checkpointed batches over the customers. Without a period
 * it bills the month before the schedule's time (or the run's start). Previews, refuses or waits
 * for approval first when asked.
 */
export async function invoicingWorkflow(input: InvoicingWorkflowInput): Promise<RunResult> {
  const parsed = parseInput(invoicingParamsSchema, input.params);
  // Settled once: continue-as-new carries it, so a run that crosses midnight bills one month.
  const period = parsed.period ?? previousMonth(nominalTime());
  const params = { ...parsed, period };
  const run = currentRun();
  return runPreviewed({
    kind: 'invoicing',
    working: 'invoicing',
    input,
    params,
    plan: (asOf) => planInvoicing({ run, params, asOf }),
    slice: (plan, cursor) => invoicingSlice({ run, params, plan, cursor }),
    continueAsNew: (next) => continueAsNew<typeof invoicingWorkflow>({ ...next, params: { ...(next.params as InvoicingWorkflowInput['params']), period } }),
    steps: (plan, checkpoint, final) => targetStates(invoicingSteps, invoicingSteps.map(() => plan.preview.matched), plan, checkpoint, final),
  });
}
