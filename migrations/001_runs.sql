-- Per-run state that must commit atomically with each batch: the checkpoint and the row errors.

-- The last committed checkpoint of a run (position and cumulative counts). An activity that
-- restarts after a crash resumes from here, so a batch is applied and counted exactly once.
CREATE TABLE run_checkpoints (
  run_id     text PRIMARY KEY,
  seq        integer NOT NULL,
  checkpoint jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every rejected row of every run, with where it was and why.
CREATE TABLE run_errors (
  id         bigserial PRIMARY KEY,
  run_id     text NOT NULL,
  row_number integer,
  line       integer,
  field      text,
  code       text NOT NULL,
  message    text NOT NULL,
  raw        jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_errors_run_id_id_idx ON run_errors (run_id, id);

-- Keys an import has already loaded, so a key repeated later in the same file is reported as a
-- duplicate instead of silently overwriting the earlier row. Emptied when the run ends.
CREATE TABLE import_keys (
  run_id     text NOT NULL,
  key        text NOT NULL,
  row_number integer NOT NULL,
  PRIMARY KEY (run_id, key)
);
