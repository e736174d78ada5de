-- Issue 14: quarantine and replay of rejected rows, and the dedupe kind.

-- Replays: a run that imports the fixed rejected rows of an earlier one, and which of the earlier
-- run's rows were accepted that way (written with the replay's batch, so counted once).
CREATE TABLE run_replays (
  run_id        text NOT NULL,
  replay_run_id text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, replay_run_id)
);
CREATE INDEX run_replays_replay_idx ON run_replays (replay_run_id);
CREATE TABLE replayed_rows (
  run_id      text NOT NULL,
  row_number  integer NOT NULL,
  accepted_by text NOT NULL,
  PRIMARY KEY (run_id, row_number)
);
-- Quarantine pages through a run's rejected rows in row order.
CREATE INDEX run_errors_run_id_row_idx ON run_errors (run_id, row_number);

-- Dedupe. A row's blocking keys (pass 0: the hash of its exact fields; then one pass per blockBy
-- key), as 52-bit hashes: rows sharing a block are compared. Ids only, never values.
CREATE TABLE dedupe_keys (
  run_id text NOT NULL,
  pass   smallint NOT NULL,
  block  bigint NOT NULL,
  id     bigint NOT NULL,
  PRIMARY KEY (run_id, pass, block, id)
);
-- Pairs of rows found to be duplicates, with their similarity (1 for exact duplicates).
CREATE TABLE dedupe_links (
  run_id text NOT NULL,
  a      bigint NOT NULL,
  b      bigint NOT NULL,
  score  real NOT NULL,
  exact  boolean NOT NULL,
  PRIMARY KEY (run_id, a, b)
);
-- The groups (connected pairs) and the row each keeps.
CREATE TABLE dedupe_groups (
  run_id   text NOT NULL,
  group_no integer NOT NULL,
  id       bigint NOT NULL,
  keep     boolean NOT NULL,
  score    real NOT NULL,
  exact    boolean NOT NULL,
  PRIMARY KEY (run_id, group_no, id)
);
CREATE INDEX dedupe_groups_id_idx ON dedupe_groups (run_id, id);
