import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { datasetNameSchema, withWritableDataset } from './datasets';
import { checkFilter, filterSchema, type Filter, type Issue } from './filter';
import { approvalSchema, errorPolicySchema } from './run';
import { strictObject } from './strict';

const ruleNameSchema = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lower_snake_case');

/** One kind of row to delete: a dataset, which of its rows, and how many per batch. */
export const cleanupRuleSchema = strictObject({
  name: ruleNameSchema,
  dataset: datasetNameSchema,
  where: filterSchema,
  /** Rows deleted per transaction: small batches keep locks short. */
  batchSize: z.number().int().min(1).max(10_000).default(1_000),
});
export type CleanupRule = z.infer<typeof cleanupRuleSchema>;

const expired: Filter = { field: 'expires_at', op: 'lt', value: 'now' };

/** The rules Batchflow ships, from the seed: expired sessions and tokens, long soft-deleted users. */
export const builtInCleanupRules = {
  expired_sessions: { name: 'expired_sessions', dataset: 'sessions', where: expired, batchSize: 1_000 },
  expired_password_reset_tokens: { name: 'expired_password_reset_tokens', dataset: 'password_reset_tokens', where: expired, batchSize: 1_000 },
  expired_verification_tokens: { name: 'expired_verification_tokens', dataset: 'verification_tokens', where: expired, batchSize: 1_000 },
  soft_deleted_users: { name: 'soft_deleted_users', dataset: 'users', where: { field: 'deleted_at', op: 'lt', value: 'now - 30 days' }, batchSize: 500 },
} as const satisfies Record<string, CleanupRule>;
const builtInNames = Object.keys(builtInCleanupRules) as [keyof typeof builtInCleanupRules, ...(keyof typeof builtInCleanupRules)[]];

/** Parameters of a cleanup: shipped rules by name and/or rules of its own, run in order. */
export const cleanupParamsSchema = errorPolicySchema
  .extend(approvalSchema.shape)
  .extend({
    rules: z
      .array(
        z.union([z.enum(builtInNames), cleanupRuleSchema], {
          // When both alternatives fail zod says only "Invalid input": say which one was meant and why.
          error: (issue) => {
            const objectIssue = issue.code === 'invalid_union' && typeof issue.input === 'object' ? issue.errors[1]?.[0] : undefined;
            const at = objectIssue?.path.map(String).join('.');
            return objectIssue
              ? `must be a rule object {name, dataset, where, batchSize}: ${at ? `${at}: ` : ''}${objectIssue.message}`
              : `must be a shipped rule (${builtInNames.join(', ')}) or a rule object {name, dataset, where, batchSize}`;
          },
        }),
      )
      .min(1)
      .max(50)
      .default([...builtInNames]),
  })
  .superRefine((params, ctx) => {
    const seen = new Set<string>();
    params.rules.forEach((rule, i) => {
      const name = typeof rule === 'string' ? rule : rule.name;
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path: ['rules', i], message: `rule "${name}" appears twice` });
      seen.add(name);
    });
  });
export type CleanupParams = z.infer<typeof cleanupParamsSchema>;

/** The params' rules as full rule objects, in order. */
export const cleanupRules = (params: CleanupParams): CleanupRule[] => params.rules.map((r) => (typeof r === 'string' ? builtInCleanupRules[r] : r));

/** A cleanup's rules held against the declared datasets (the shipped rules' datasets too). */
export function checkCleanupParams(params: CleanupParams, datasets: DatasetRegistry): Issue[] {
  return cleanupRules(params).flatMap((rule, i) => {
    const at = typeof params.rules[i] === 'string' ? ['rules', i] : ['rules', i, 'dataset'];
    return withWritableDataset(datasets, rule.dataset, at, (dataset) => checkFilter(dataset, rule.where, ['rules', i, 'where']));
  });
}
