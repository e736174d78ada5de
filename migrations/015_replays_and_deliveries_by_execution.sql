-- Replays and the notification delivery log belong to one execution of a run, as the rest of its
-- state does since 014: a run id used again (once the earlier run's history expired) shows neither
-- the earlier run's replays nor its deliveries, and the retention purge removes them with it.

-- What is kept so far goes to the newest execution registered under its run id, else to one named
-- by the run id (as 014 named the state it found), registered so that the purge sees it.
CREATE TEMP TABLE latest_execution ON COMMIT DROP AS
SELECT DISTINCT ON (workflow_id) workflow_id, execution_id FROM run_executions ORDER BY workflow_id, started_at DESC;
INSERT INTO run_executions (execution_id, workflow_id)
SELECT id, id FROM (
  SELECT run_id AS id FROM run_replays UNION SELECT replay_run_id FROM run_replays
  UNION SELECT accepted_by FROM replayed_rows UNION SELECT run_id FROM notification_deliveries
) existing
WHERE NOT EXISTS (SELECT 1 FROM latest_execution l WHERE l.workflow_id = existing.id)
ON CONFLICT (execution_id) DO NOTHING;
INSERT INTO latest_execution SELECT workflow_id, execution_id FROM run_executions e
WHERE NOT EXISTS (SELECT 1 FROM latest_execution l WHERE l.workflow_id = e.workflow_id);

-- A replay links the execution whose rejected rows it fixes to its own execution (both with their
-- run ids, as the API shows them). A replay of a replay fixes the first run's rows.
ALTER TABLE run_replays ADD COLUMN execution_id text, ADD COLUMN replay_execution_id text;
UPDATE run_replays r SET
  execution_id = (SELECT execution_id FROM latest_execution WHERE workflow_id = r.run_id),
  replay_execution_id = (SELECT execution_id FROM latest_execution WHERE workflow_id = r.replay_run_id);
ALTER TABLE run_replays DROP CONSTRAINT run_replays_pkey;
ALTER TABLE run_replays ALTER COLUMN execution_id SET NOT NULL, ALTER COLUMN replay_execution_id SET NOT NULL;
ALTER TABLE run_replays ADD PRIMARY KEY (execution_id, replay_execution_id);
DROP INDEX run_replays_replay_idx;
CREATE INDEX run_replays_replay_execution_idx ON run_replays (replay_execution_id);

-- The rows a replay accepted (their row numbers in the first run), under the replay's execution:
-- the replay writes them with its batch and knows only its own execution. The first run counts
-- the rows its replays accepted, each once.
ALTER TABLE replayed_rows RENAME TO replayed_rows_by_run;
CREATE TABLE replayed_rows (
  execution_id text NOT NULL,
  row_number   integer NOT NULL,
  PRIMARY KEY (execution_id, row_number)
);
INSERT INTO replayed_rows (execution_id, row_number)
SELECT l.execution_id, r.row_number FROM replayed_rows_by_run r JOIN latest_execution l ON l.workflow_id = r.accepted_by
ON CONFLICT DO NOTHING;
DROP TABLE replayed_rows_by_run;

-- Deliveries name the execution that recorded them; run_id stays as the run id receivers are told.
ALTER TABLE notification_deliveries ADD COLUMN execution_id text;
UPDATE notification_deliveries d SET execution_id = (SELECT execution_id FROM latest_execution WHERE workflow_id = d.run_id);
ALTER TABLE notification_deliveries ALTER COLUMN execution_id SET NOT NULL;
DROP INDEX notification_deliveries_run_idx;
DROP INDEX notification_deliveries_pending_idx;
CREATE INDEX notification_deliveries_execution_idx ON notification_deliveries (execution_id, seq);
CREATE INDEX notification_deliveries_pending_idx ON notification_deliveries (execution_id) WHERE status = 'pending';
