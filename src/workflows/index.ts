// The worker's workflow bundle: every workflow type Batchflow runs.
export { aggregateWorkflow } from './aggregate';
export { bulkUpdateWorkflow } from './bulk-update';
export { cacheRefreshWorkflow } from './cache-refresh';
export { cleanupWorkflow } from './cleanup';
export { customStepWorkflow } from './custom';
export { dedupeWorkflow } from './dedupe';
export { exportWorkflow } from './export';
export { importWorkflow } from './import';
export { invoicingWorkflow } from './invoicing';
export { pipelineWorkflow } from './pipeline';
export { reportWorkflow } from './report';
export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';
