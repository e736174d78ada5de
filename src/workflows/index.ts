// The worker's workflow bundle: every workflow type Batchflow runs.
export { bulkUpdateWorkflow } from './bulk-update';
export { cleanupWorkflow } from './cleanup';
export { customStepWorkflow } from './custom';
export { importWorkflow } from './import';
export { invoicingWorkflow } from './invoicing';
export { pipelineWorkflow } from './pipeline';
export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';
