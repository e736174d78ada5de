import { z } from 'zod';
import type { CacheDataset, Dataset, DatasetRegistry } from '../datasets';
import type { Issue } from './filter';

/**
 * Datasets are declared in files the worker and the API read at start; workflow code cannot read
 * files. So a params schema checks only the shape of a dataset name, and each job kind's `check`
 * holds its params against the declared datasets: the API runs it before starting a run, and the
 * run's first activity runs it again (a run may be started by another client, or outlive a change
 * of declarations).
 */
export const datasetNameSchema = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a dataset name (lower_snake_case)');

/** The declared dataset a param names, or the issue that says it is not one. */
function lookupDataset(datasets: DatasetRegistry, name: string, path: (string | number)[]): { dataset: Dataset } | { issue: Issue } {
  const dataset = datasets.get(name);
  return dataset ? { dataset } : { issue: { path, message: `"${name}" is not a declared dataset (${datasets.names.join(', ')})` } };
}

/** Whether a declared dataset is a cache (`cache: true`, or defineCacheDataset): what cache-refresh runs on. */
export const isCacheDataset = (dataset: Dataset): dataset is CacheDataset => 'cache' in dataset;

/** Issues of a dataset-bound param: the dataset's own checks, or that it is not declared. */
export function withDataset(datasets: DatasetRegistry, name: string, path: (string | number)[], check: (dataset: Dataset) => Issue[]): Issue[] {
  const found = lookupDataset(datasets, name, path);
  return 'issue' in found ? [found.issue] : check(found.dataset);
}

/**
 * Issues of a param naming a dataset the run writes: as withDataset, and the dataset must not be
 * one that another kind alone writes (`writtenBy`: invoices are written by invoicing runs only).
 */
export function withWritableDataset(datasets: DatasetRegistry, name: string, path: (string | number)[], check: (dataset: Dataset) => Issue[]): Issue[] {
  return withDataset(datasets, name, path, (dataset) => (dataset.writtenBy ? [writtenByIssue(dataset, path)] : check(dataset)));
}

/** The issue of a write to a dataset that another kind alone writes. */
export const writtenByIssue = (dataset: Dataset, path: (string | number)[]): Issue => ({
  path,
  message: `"${dataset.name}" is written by ${dataset.writtenBy} runs only: imports, bulk updates, cleanups and dedupe merges may not change it`,
});

/** Issues as one line each: `params.where.field: must be …`. */
export const describeIssues = (issues: readonly Issue[], prefix = 'params') => issues.map((i) => `${[prefix, ...i.path].join('.')}: ${i.message}`).join('; ');

/** Issues of another schema's nested params, moved under `path`. */
export const prefixIssues = (issues: readonly Issue[], path: (string | number)[]): Issue[] => issues.map((i) => ({ path: [...path, ...i.path], message: i.message }));
