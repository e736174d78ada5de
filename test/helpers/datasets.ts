import { shippedDatasetsDir } from '../../src/config';
import { loadDatasets, type CacheDataset, type ColumnSpec, type Dataset } from '../../src/datasets';
import { isCacheDataset } from '../../src/jobs/datasets';

/** The datasets Batchflow ships (datasets/*.yaml), for tests that need one without a stack. */
export const shipped = loadDatasets([shippedDatasetsDir]);
const get = (name: string) => {
  const dataset = shipped.get(name);
  if (!dataset) throw new Error(`no shipped dataset ${name}`);
  return dataset;
};
export const users = get('users');
export const products = get('products');
export const sessions = get('sessions');
export const productCache = ((dataset: Dataset): CacheDataset => {
  if (!isCacheDataset(dataset)) throw new Error(`${dataset.name} is not a cache dataset`);
  return dataset;
})(get('product_cache'));

/** A declared column of a dataset (a test fails at once if the declaration lacks it). */
export function column(dataset: Dataset, name: string): ColumnSpec {
  const spec = dataset.columns[name];
  if (!spec) throw new Error(`${dataset.name} has no column ${name}`);
  return spec;
}
