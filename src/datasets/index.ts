import type { Dataset } from './dataset';

export { col, defineDataset, REDACTED, type ColumnSpec, type Dataset, type SqlType } from './dataset';
export { cacheStatuses, defineCacheDataset, recordReader, valueAt, type CacheDataset, type CacheStatus } from './cache';
export { compileDeclaration, declarationYaml, DatasetDeclarationError, type DatasetDeclaration } from './declaration';
export { createRegistry, loadDatasets, type DatasetRegistry } from './registry';

/**
 * Datasets declared in TypeScript (defineDataset with col.* columns), loaded beside the YAML files
 * of BATCHFLOW_DATASETS. The shipped datasets are YAML (datasets/*.yaml); a TypeScript dataset
 * listed here works the same everywhere, and `declarationYaml(dataset.declaration)` turns it into
 * a YAML file.
 */
export const codeDatasets: readonly Dataset[] = [];
