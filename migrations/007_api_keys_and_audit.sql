-- API keys and the audit log: who may call the API, and who did what through it.

-- A key is `bf_<id>_<secret>`; only the SHA-256 of the secret is stored. The id is not secret:
-- it finds the row, names the key in lists and the audit log, and keys the rate limit.
CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  scopes       text[] NOT NULL,
  secret_hash  bytea NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text NOT NULL,
  last_used_at timestamptz,
  revoked_at   timestamptz
);

-- Starts, cancels, approvals, rejections, uploads and key changes: who (the key's name), what,
-- when, on which run, and from where. Rows are only ever added.
CREATE TABLE audit_log (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  key_id     text,
  action     text NOT NULL,
  run_id     text,
  details    jsonb,
  ip         text,
  user_agent text
);
CREATE INDEX audit_log_run_id_idx ON audit_log (run_id, id) WHERE run_id IS NOT NULL;
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
