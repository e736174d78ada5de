import type { Counts, Failure } from './run';

/**
 * A run's progress through its input as it stands after a committed batch: small enough for a
 * heartbeat and for workflow history (positions and counts, never rows).
 */
export interface Checkpoint<P> {
  /** Batches committed so far; the newest checkpoint has the highest seq. */
  seq: number;
  position: P;
  counts: Counts;
  /** Counts per step, for runs whose input has named parts (a cleanup's rules). */
  byStep?: Record<string, Counts>;
  /** Counts per dataset the batches touched (stats count a run's rows per dataset from here). */
  byDataset?: Record<string, Counts>;
  done: boolean;
  /** Why the run stopped before the end of its input. */
  stop?: Failure;
  warnings: string[];
  bytesRead?: number;
  bytesTotal?: number;
}

/** Where a run over existing rows stands: which target (a cleanup rule), and the last id done in it. */
export interface KeysetPosition {
  step: number;
  lastId: number;
}
export const keysetStart: KeysetPosition = { step: 0, lastId: 0 };
