// The worker's workflow bundle: every workflow type Batchflow runs.
export { importWorkflow } from './import';
export { cancelSignal, progressQuery } from './run-tracker';
