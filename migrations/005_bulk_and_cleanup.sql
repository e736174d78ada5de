-- Bulk update and cleanup: what users need beyond import, and the tables the shipped cleanup rules
-- empty (the seed's sessions and tokens).

-- Soft delete and activity tracking, so "deactivate inactive users" and "hard-delete users
-- soft-deleted more than 30 days ago" have columns to filter on.
ALTER TABLE users ADD COLUMN last_login_at timestamptz, ADD COLUMN deleted_at timestamptz;

CREATE TABLE sessions (
  id         bigserial PRIMARY KEY,
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token      text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE password_reset_tokens (
  id         bigserial PRIMARY KEY,
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE verification_tokens (
  id         bigserial PRIMARY KEY,
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Cleanup rules filter on expiry; bulk updates on status and soft delete.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX password_reset_tokens_expires_at_idx ON password_reset_tokens (expires_at);
CREATE INDEX verification_tokens_expires_at_idx ON verification_tokens (expires_at);
CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;

-- Id lists too large for workflow history: the API stores them here and the run reads them in
-- keyset order. A list is named by the digest of its ids, so the same list is stored once.
CREATE TABLE id_lists (
  list_id text NOT NULL,
  id      bigint NOT NULL,
  PRIMARY KEY (list_id, id)
);
