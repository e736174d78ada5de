import { dailyStats } from './daily-stats';
import type { Rollup } from './rollup';

export { defineRollup, type Measure, type Rollup } from './rollup';

/** Every declared roll-up, by name: the aggregate kind computes them per date. */
export const rollups = { daily_stats: dailyStats } as const satisfies Record<string, Rollup>;
export type RollupName = keyof typeof rollups;
export const rollupNames = Object.keys(rollups) as [RollupName, ...RollupName[]];
