import type { CacheDataset } from './cache';
import type { Dataset } from './dataset';
import { posts } from './posts';
import { productCache } from './product-cache';
import { products } from './products';
import { passwordResetTokens, sessions, verificationTokens } from './tokens';
import { userActivity } from './user-activity';
import { users } from './users';

export { col, defineDataset, type Dataset, type ColumnSpec, type SqlType } from './dataset';
export { cacheStatuses, defineCacheDataset, recordReader, valueAt, type CacheDataset, type CacheStatus } from './cache';
export { passwordResetTokens, posts, productCache, products, sessions, userActivity, users, verificationTokens };

/** Datasets that mirror an upstream service, kept fresh by cache-refresh runs. */
const caches = {
  product_cache: productCache,
} as const satisfies Record<string, CacheDataset>;
export type CacheDatasetName = keyof typeof caches;
export const cacheDatasetNames = Object.keys(caches) as [CacheDatasetName, ...CacheDatasetName[]];

/** Every dataset jobs may read or write, by name. */
export const datasets = {
  users,
  products,
  sessions,
  password_reset_tokens: passwordResetTokens,
  verification_tokens: verificationTokens,
  posts,
  user_activity: userActivity,
  ...caches,
} as const satisfies Record<string, Dataset>;
export type DatasetName = keyof typeof datasets;
export const datasetNames = Object.keys(datasets) as [DatasetName, ...DatasetName[]];

export function getDataset(name: DatasetName): Dataset {
  return datasets[name];
}

export function getCacheDataset(name: CacheDatasetName): CacheDataset {
  return caches[name];
}
