-- Run state belongs to one execution of a run, not to its id. A run id may be used again once the
-- earlier run's history has expired, and a pipeline's child id may have been used by someone
-- else: neither may resume the older execution's checkpoint or show its errors. State is keyed by
-- the Temporal run id of the run's first execution (the same across continue-as-new), and each
-- execution is registered here with its run id, so the API finds the state by run id and old
-- state can be purged (BATCHFLOW_RUN_RETENTION).
CREATE TABLE run_executions (
  execution_id text PRIMARY KEY,
  workflow_id  text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  -- Set again by every plan and slice: state untouched for the retention period is purged.
  touched_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_executions_workflow_id_idx ON run_executions (workflow_id, started_at DESC);
CREATE INDEX run_executions_touched_at_idx ON run_executions (touched_at);

-- State kept so far becomes one execution per run id, named by that id.
INSERT INTO run_executions (execution_id, workflow_id)
SELECT run_id, run_id FROM (
  SELECT run_id FROM run_checkpoints UNION SELECT run_id FROM run_errors
  UNION SELECT run_id FROM import_keys UNION SELECT run_id FROM import_batches
  UNION SELECT run_id FROM dedupe_keys UNION SELECT run_id FROM dedupe_links UNION SELECT run_id FROM dedupe_groups
) existing;

ALTER TABLE run_checkpoints RENAME COLUMN run_id TO execution_id;
ALTER TABLE run_errors RENAME COLUMN run_id TO execution_id;
ALTER INDEX run_errors_run_id_id_idx RENAME TO run_errors_execution_id_id_idx;
ALTER INDEX run_errors_run_id_row_idx RENAME TO run_errors_execution_id_row_idx;
ALTER TABLE import_keys RENAME COLUMN run_id TO execution_id;
ALTER TABLE import_batches RENAME COLUMN run_id TO execution_id;
ALTER TABLE dedupe_keys RENAME COLUMN run_id TO execution_id;
ALTER TABLE dedupe_links RENAME COLUMN run_id TO execution_id;
ALTER TABLE dedupe_groups RENAME COLUMN run_id TO execution_id;
-- A finished run's figures name the execution whose row errors they count (stats' top error codes).
ALTER TABLE run_facts ADD COLUMN execution_id text;
UPDATE run_facts SET execution_id = run_id;
ALTER TABLE run_facts ALTER COLUMN execution_id SET NOT NULL;
-- Ending a run (and the purge) drops its batches: without this, each time a scan of every run's.
CREATE INDEX import_batches_execution_id_idx ON import_batches (execution_id);

-- A plan's sample rows (bulk update and cleanup previews): shown by the API, kept out of workflow
-- history, which holds the counts only.
CREATE TABLE run_previews (
  execution_id text PRIMARY KEY,
  samples      jsonb NOT NULL
);

-- Stored id lists are shared by content (named by their digest): a list goes once no run that
-- references it is left and it was not stored again within the retention period.
CREATE TABLE id_list_heads (
  list_id   text PRIMARY KEY,
  stored_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO id_list_heads (list_id) SELECT DISTINCT list_id FROM id_lists;
CREATE TABLE run_id_lists (
  execution_id text NOT NULL,
  list_id      text NOT NULL,
  PRIMARY KEY (execution_id, list_id)
);
CREATE INDEX run_id_lists_list_id_idx ON run_id_lists (list_id);
