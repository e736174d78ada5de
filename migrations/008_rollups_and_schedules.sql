-- Daily roll-ups (the aggregate kind) and the datasets they count: posts and user activity.

-- Posts and activity may arrive before the users they name (partner files), so user_id is not a
-- foreign key: an import never fails on an unknown user.
CREATE TABLE posts (
  id         bigserial PRIMARY KEY,
  slug       text NOT NULL UNIQUE,
  user_id    bigint NOT NULL,
  title      text NOT NULL,
  body       text,
  posted_at  timestamptz NOT NULL,
  deleted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_activity (
  id            bigserial PRIMARY KEY,
  user_id       bigint NOT NULL,
  activity_type text NOT NULL,
  occurred_at   timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, activity_type, occurred_at)
);

-- Each roll-up measure counts rows by a time column up to the end of a day: these keep one date's
-- counts an index range instead of a scan of the table.
CREATE INDEX users_created_at_idx ON users (created_at);
CREATE INDEX posts_posted_at_idx ON posts (posted_at);
CREATE INDEX user_activity_occurred_at_idx ON user_activity (occurred_at);

-- One row per date, as of the end of that day (src/rollups/daily-stats.ts says what each counts).
-- Upserted by date: computing a date again replaces its row.
CREATE TABLE daily_stats (
  date         date PRIMARY KEY,
  total_users  integer NOT NULL,
  new_signups  integer NOT NULL,
  active_users integer NOT NULL,
  posts        integer NOT NULL,
  run_id       text NOT NULL,
  computed_at  timestamptz NOT NULL DEFAULT now()
);
