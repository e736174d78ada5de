import type { Dataset } from './dataset';
import { posts } from './posts';
import { products } from './products';
import { passwordResetTokens, sessions, verificationTokens } from './tokens';
import { userActivity } from './user-activity';
import { users } from './users';

export { col, defineDataset, type Dataset, type ColumnSpec, type SqlType } from './dataset';
export { passwordResetTokens, posts, products, sessions, userActivity, users, verificationTokens };

/** Every dataset jobs may read or write, by name. */
export const datasets = {
  users,
  products,
  sessions,
  password_reset_tokens: passwordResetTokens,
  verification_tokens: verificationTokens,
  posts,
  user_activity: userActivity,
} as const satisfies Record<string, Dataset>;
export type DatasetName = keyof typeof datasets;
export const datasetNames = Object.keys(datasets) as [DatasetName, ...DatasetName[]];

export function getDataset(name: DatasetName): Dataset {
  return datasets[name];
}
