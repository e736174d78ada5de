import type { DatasetRegistry } from '../datasets';
import { dailyStats } from './daily-stats';
import { checkRollup, type Rollup } from './rollup';

export { checkRollup, defineRollup, type Measure, type Rollup } from './rollup';

/** Every declared roll-up, by name: the aggregate kind computes them per date. */
export const rollups = { daily_stats: dailyStats } as const satisfies Record<string, Rollup>;
export type RollupName = keyof typeof rollups;
export const rollupNames = Object.keys(rollups) as [RollupName, ...RollupName[]];

export class RollupMismatchError extends Error {}

/** The worker's check at start: every roll-up against the declared datasets; a mismatch stops it, naming each problem. */
export function assertRollupsMatchDatasets(datasets: DatasetRegistry): void {
  const problems = Object.values<Rollup>(rollups).flatMap((rollup) => checkRollup(rollup, datasets));
  if (problems.length > 0) throw new RollupMismatchError(`Roll-ups do not match the declared datasets:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}
