import type { DatasetRegistry } from '../datasets';

/**
 * One figure of a roll-up: rows of a dataset counted by a time column, as of the end of a day in
 * the roll-up's time zone. A row counts once it exists by then (`at` before the day's end) and not
 * once it is deleted by then (`deletedAt` before the day's end).
 */
export interface Measure {
  /** A declared dataset's name. */
  dataset: string;
  /** The timestamp column that places a row in time (when it was created, posted, happened). */
  at: string;
  /** `day`: rows whose `at` falls on the day; `to_date`: every row whose `at` is before the day's end. */
  window: 'day' | 'to_date';
  /** A soft-delete timestamp column: rows deleted by the day's end do not count. */
  deletedAt?: string;
  /** Count distinct values of this column instead of rows (active users: distinct user_id). */
  distinct?: string;
  description: string;
}

export interface RollupSpec<M extends string = string> {
  name: string;
  /** Its table: the date column (primary key), one integer column per measure, run_id, computed_at. */
  table: string;
  dateColumn: string;
  /** Where a day starts and ends (IANA name). */
  timeZone: string;
  description: string;
  measures: Record<M, Measure>;
}

/** Declares a roll-up. Its measures' datasets are declared apart: checkRollup holds them together. */
export function defineRollup<M extends string>(spec: RollupSpec<M>) {
  return { ...spec, measureNames: Object.keys(spec.measures) as M[] };
}
export type Rollup = ReturnType<typeof defineRollup<string>>;

/**
 * What is wrong between a roll-up and the declared datasets. Its identifiers reach SQL, so each
 * measure's dataset must be declared and its columns be declared with the right types: the worker
 * checks every roll-up at start, and an aggregate run the ones it computes, so a typo fails there
 * and not halfway through a run.
 */
export function checkRollup(rollup: Rollup, datasets: DatasetRegistry): string[] {
  return Object.entries<Measure>(rollup.measures).flatMap(([name, m]) => {
    const dataset = datasets.get(m.dataset);
    if (!dataset) return [`roll-up ${rollup.name}: measure ${name}: "${m.dataset}" is not a declared dataset (${datasets.names.join(', ')})`];
    const problems: string[] = [];
    const check = (column: string | undefined, types: readonly string[]) => {
      if (column !== undefined && !types.includes(dataset.filterType(column) ?? '')) {
        problems.push(`roll-up ${rollup.name}: measure ${name}: ${column} is not a ${types.join(' or ')} column of ${dataset.name}`);
      }
    };
    check(m.at, ['timestamptz']);
    check(m.deletedAt, ['timestamptz']);
    check(m.distinct, ['integer', 'text', 'date']);
    return problems;
  });
}
