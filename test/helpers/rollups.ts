import type { Pool } from '../../src/db/pool';
import { datesBetween } from '../../src/jobs/dates';

/**
 * Rows for daily_stats tests, placed in a year no other test uses (other tests' rows are created
 * now), and the figures daily_stats must show for them, worked out here independently of the SQL.
 */
export interface Timed {
  at: string;
  deleted?: string;
}
export interface RollupSeed {
  users: Timed[];
  posts: Timed[];
  /** [user index, activity type, time]. */
  activity: [number, string, string][];
}

/** Inserts the seed with `prefix` in every email and slug; returns the users' ids in seed order. */
export async function insertSeed(pool: Pool, prefix: string, seed: RollupSeed, marker = 'x'): Promise<number[]> {
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO users (email, name, created_at, deleted_at)
     SELECT $1 || '.' || i || '@example.com', $4 || ' user ' || i, c, d FROM unnest($2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS u (c, d, i) ORDER BY i RETURNING id`,
    [prefix, seed.users.map((u) => u.at), seed.users.map((u) => u.deleted ?? null), marker],
  );
  // Ids follow the insert order, which follows the seed.
  const ids = rows.map((r) => r.id).sort((a, b) => a - b);
  await pool.query(
    `INSERT INTO posts (slug, user_id, title, body, posted_at, deleted_at)
     SELECT $1 || '-' || i, $2, $5 || ' title', $5 || ' body', p, d FROM unnest($3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS x (p, d, i)`,
    [prefix, ids[0], seed.posts.map((p) => p.at), seed.posts.map((p) => p.deleted ?? null), marker],
  );
  await pool.query(
    'INSERT INTO user_activity (user_id, activity_type, occurred_at) SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])',
    [seed.activity.map(([u]) => ids[u]), seed.activity.map(([, type]) => `${marker} ${type}`), seed.activity.map(([, , at]) => at)],
  );
  return ids;
}

/** Removes a seed: soft-deleted users left behind would be the shipped cleanup rule's to delete. */
export async function removeSeed(pool: Pool, prefix: string, userIds: number[]): Promise<void> {
  await pool.query('DELETE FROM user_activity WHERE user_id = ANY($1::bigint[])', [userIds]);
  await pool.query('DELETE FROM posts WHERE slug LIKE $1', [`${prefix}-%`]);
  await pool.query('DELETE FROM users WHERE id = ANY($1::bigint[])', [userIds]);
}

/** The daily_stats row of each date for a seed alone (UTC days): counts as of the end of the day. */
export function expectedStats(seed: RollupSeed, from: string, to: string) {
  return datesBetween(from, to).map((date) => {
    const starts = Date.parse(`${date}T00:00:00Z`);
    const ends = starts + 86_400_000;
    const ms = (t: string) => Date.parse(t);
    const alive = (r: Timed) => ms(r.at) < ends && (r.deleted === undefined || ms(r.deleted) >= ends);
    const onDay = (t: string) => ms(t) >= starts && ms(t) < ends;
    return {
      date,
      total_users: seed.users.filter(alive).length,
      new_signups: seed.users.filter((u) => alive(u) && onDay(u.at)).length,
      active_users: new Set(seed.activity.filter(([, , at]) => onDay(at)).map(([u]) => u)).size,
      posts: seed.posts.filter((p) => alive(p) && onDay(p.at)).length,
    };
  });
}

export async function statsRows(pool: Pool, from: string, to: string) {
  const { rows } = await pool.query<{ date: string; total_users: number; new_signups: number; active_users: number; posts: number; run_id: string }>(
    'SELECT date::text, total_users, new_signups, active_users, posts, run_id FROM daily_stats WHERE date BETWEEN $1 AND $2 ORDER BY date',
    [from, to],
  );
  return rows;
}
