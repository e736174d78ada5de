import { getDataset, type DatasetName } from '../datasets';

/**
 * One figure of a roll-up: rows of a dataset counted by a time column, as of the end of a day in
 * the roll-up's time zone. A row counts once it exists by then (`at` before the day's end) and not
 * once it is deleted by then (`deletedAt` before the day's end).
 */
export interface Measure {
  dataset: DatasetName;
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

/**
 * Declares a roll-up. Its identifiers reach SQL, so each measure's columns are checked here against
 * the dataset's declaration: a typo fails at start, not in a run.
 */
export function defineRollup<M extends string>(spec: RollupSpec<M>) {
  for (const [name, m] of Object.entries<Measure>(spec.measures)) {
    const dataset = getDataset(m.dataset);
    const check = (column: string | undefined, types: readonly string[]) => {
      if (column !== undefined && !types.includes(dataset.filterType(column) ?? '')) {
        throw new Error(`roll-up ${spec.name}: measure ${name}: ${column} is not a ${types.join(' or ')} column of ${dataset.name}`);
      }
    };
    check(m.at, ['timestamptz']);
    check(m.deletedAt, ['timestamptz']);
    check(m.distinct, ['integer', 'text', 'date']);
  }
  return { ...spec, measureNames: Object.keys(spec.measures) as M[] };
}
export type Rollup = ReturnType<typeof defineRollup<string>>;
