-- One row per finished run, written when it ends: what GET /stats (and reports) count. It holds
-- figures only, no rows, and outlives the run's checkpoint and row errors.
CREATE TABLE run_facts (
  run_id          text PRIMARY KEY,
  kind            text NOT NULL,
  status          text NOT NULL,
  -- Why it failed, stopped early or was cancelled (an ErrorCode), if it did.
  error_code      text,
  started_at      timestamptz NOT NULL,
  ended_at        timestamptz NOT NULL,
  duration_ms     bigint NOT NULL,
  processed       bigint NOT NULL,
  succeeded       bigint NOT NULL,
  failed          bigint NOT NULL,
  skipped         bigint NOT NULL,
  -- The run's own committed batches, per dataset: {"users": {"processed": 10, "failed": 1, ...}}.
  -- A pipeline has none of its own: its steps are runs that count theirs.
  rows_by_dataset jsonb NOT NULL DEFAULT '{}'
);
-- Stats select the runs that started in a window.
CREATE INDEX run_facts_started_at_idx ON run_facts (started_at);
