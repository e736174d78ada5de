import { customers, invoiceLines, invoices, usageEvents } from './billing';
import type { Dataset } from './dataset';
import { products } from './products';
import { passwordResetTokens, sessions, verificationTokens } from './tokens';
import { users } from './users';

export { col, defineDataset, type Dataset, type ColumnSpec, type SqlType } from './dataset';
export { customers, invoiceLines, invoices, passwordResetTokens, products, sessions, usageEvents, users, verificationTokens };

/** Every dataset jobs may read or write, by name. */
export const datasets = {
  users,
  products,
  sessions,
  password_reset_tokens: passwordResetTokens,
  verification_tokens: verificationTokens,
  customers,
  usage_events: usageEvents,
  invoices,
  invoice_lines: invoiceLines,
} as const satisfies Record<string, Dataset>;
export type DatasetName = keyof typeof datasets;
export const datasetNames = Object.keys(datasets) as [DatasetName, ...DatasetName[]];
/** The datasets imports, bulk updates and cleanups may write: not those a flow alone writes (invoices). */
export const writableDatasetNames = datasetNames.filter((name) => !datasets[name].writtenBy) as [DatasetName, ...DatasetName[]];

export function getDataset(name: DatasetName): Dataset {
  return datasets[name];
}
