/**
 * Workload `dedupe-1m`: 1,000,000 users of whom 1% are planted near duplicates of another (one
 * letter dropped from the last name and one from the email), through the dedupe workflow (report
 * only), against the same blocking and Levenshtein comparison as one SQL script (fuzzystrmatch),
 * same run. Both are scored by recall: the share of planted pairs found.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { runState } from '../src/db/queries';
import type { RunResult } from '../src/jobs/run';
import { log, type BenchContext, type WorkloadResult } from './context';

const exec = promisify(execFile);

const FIRST = [
  'Aaron', 'Abigail', 'Adrian', 'Agnes', 'Alberto', 'Alice', 'Amara', 'Anders', 'Anika', 'Arjun', 'Astrid', 'Beatriz', 'Benedikt', 'Bianca', 'Bruno', 'Camille', 'Carlos',
  'Chiara', 'Clara', 'Dario', 'Delphine', 'Dmitri', 'Elena', 'Elif', 'Emeka', 'Emil', 'Esther', 'Fatima', 'Felix', 'Fiona', 'Gabriel', 'Greta', 'Hana', 'Hugo', 'Ines',
  'Ingrid', 'Isaac', 'Jamal', 'Joanna', 'Jonas', 'Julia', 'Kai', 'Kamala', 'Kenji', 'Lars', 'Leila', 'Lena', 'Lorenzo', 'Lucia', 'Malik', 'Marta', 'Mateo', 'Mei',
  'Milan', 'Nadia', 'Naomi', 'Nikolai', 'Nora', 'Oscar', 'Paloma', 'Pavel', 'Priya', 'Rafael', 'Rania', 'Rosa', 'Ruben', 'Sakura', 'Samir', 'Sara', 'Sebastian',
  'Selin', 'Sofia', 'Stefan', 'Tariq', 'Thea', 'Tomas', 'Ulla', 'Valentina', 'Viktor', 'Wanjiru', 'Xavier', 'Yara', 'Yusuf', 'Zainab', 'Zoran', 'Adele', 'Boris',
  'Cyrus', 'Dalia', 'Edgar', 'Freya', 'Gustav', 'Helga', 'Ivo', 'Jorge', 'Katja', 'Lionel', 'Mira', 'Nils', 'Olga',
];
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ra', 'su', 'ti', 'vo', 'ba', 'de', 'fi', 'gu', 'ha', 'jo', 'ke', 'li', 'ma', 'no', 'pe', 'ri', 'sa', 'to', 'vu', 'wa', 'ye', 'zo', 'ce', 'da', 'el', 'fa', 'go', 'hi', 'in', 'ju', 'ko', 'lu', 'me', 'ni', 'or', 'pa'];
const sqlArray = (values: readonly string[]) => `ARRAY[${values.map((v) => `'${v}'`).join(', ')}]`;

// Blocking: the first three letters of each word of the name, or the last three: a dropped
// letter breaks at most one of them (names are 5 to 9 letters and 8 long).
const BLOCK_BY = [[{ field: 'name', prefix: 3, eachWord: true }], [{ field: 'name', suffix: 3, eachWord: true }]];
const THRESHOLD = 0.9;

/** 99% distinct people (a first name and a four-syllable last name), 1% near copies of one of them; `planted` maps each copy to its original. */
async function seed(ctx: BenchContext): Promise<number> {
  const planted = Math.round(ctx.rows / 100);
  const originals = ctx.rows - planted;
  await ctx.pool.query('TRUNCATE users RESTART IDENTITY CASCADE; DROP TABLE IF EXISTS planted; CREATE TABLE planted (copy bigint PRIMARY KEY, original bigint NOT NULL)');
  const h = (salt: string, n: number) => `(abs(hashtext(g::text || '${salt}')) % ${n})`;
  await ctx.pool.query(
    `WITH p AS (
       SELECT g, (${sqlArray(FIRST)})[1 + ${h('f', FIRST.length)}] AS first,
              initcap((${sqlArray(SYLLABLES)})[1 + ${h('a', 40)}] || (${sqlArray(SYLLABLES)})[1 + ${h('b', 40)}] || (${sqlArray(SYLLABLES)})[1 + ${h('c', 40)}] || (${sqlArray(SYLLABLES)})[1 + ${h('d', 40)}]) AS last
       FROM generate_series(1, $1::int) g)
     INSERT INTO users (email, name, signup_date)
     SELECT lower(first || '.' || last) || '.' || left(md5(g::text), 8) || '@example.com', first || ' ' || last, DATE '2020-01-01' + ${h('s', 1500)}
     FROM p ORDER BY g`,
    [originals],
  );
  // Copies of distinct originals spread over the table (97 is prime: distinct unless the count is a multiple of it).
  const original = `1 + (g * 97) % ${originals}`;
  // Each copy drops one letter of the original's last name and one of its email's first part.
  await ctx.pool.query(
    `WITH o AS (SELECT g, ${original} AS original FROM generate_series(1, $1::int) g),
     c AS (SELECT o.g, u.id, u.name, u.email, u.signup_date, position(' ' in u.name) AS space, position('@' in u.email) AS at FROM o JOIN users u ON u.id = o.original)
     INSERT INTO users (email, name, signup_date)
     SELECT overlay(email placing '' from 1 + ${h('e', 1000)} % (at - 1) for 1), overlay(name placing '' from space + 1 + ${h('n', 1000)} % (length(name) - space) for 1), signup_date
     FROM c ORDER BY g`,
    [planted],
  );
  await ctx.pool.query(`INSERT INTO planted SELECT ${originals} + g, ${original} FROM generate_series(1, $1::int) g`, [planted]);
  return planted;
}

/** Planted pairs a result found: both rows in one group. */
async function recall(ctx: BenchContext, pairsTable: string, planted: number): Promise<number> {
  const { rows } = await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM planted p JOIN ${pairsTable} f ON f.a = least(p.copy, p.original) AND f.b = greatest(p.copy, p.original)`);
  return rows[0]!.n / planted;
}

export async function benchDedupe(ctx: BenchContext): Promise<WorkloadResult> {
  const { pool } = ctx;
  log(`seeding ${ctx.rows.toLocaleString()} users, 1% of them planted near duplicates`);
  const planted = await seed(ctx);
  await pool.query('VACUUM ANALYZE users');
  await pool.query('CHECKPOINT');

  // Reference: the same blocks and comparison, by hand in SQL.
  const script = path.join(ctx.tmp, 'dedupe-reference.sql');
  const key = (cut: 'left' | 'right') => `(SELECT string_agg(${cut}(w, 3), ' ') FROM regexp_split_to_table(lower(name), ' ') w)`;
  const score = `((1 - levenshtein(a.n, b.n)::float / greatest(length(a.n), length(b.n))) + (1 - levenshtein(a.e, b.e)::float / greatest(length(a.e), length(b.e)))) / 2`;
  fs.writeFileSync(
    script,
    `CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
DROP TABLE IF EXISTS ref_pairs;
CREATE TEMP TABLE k AS SELECT id, lower(name) AS n, lower(email) AS e, ${key('left')} AS k1, ${key('right')} AS k2 FROM users;
CREATE TABLE ref_pairs AS
  SELECT a.id AS a, b.id AS b FROM k a JOIN k b ON a.k1 = b.k1 AND a.id < b.id WHERE ${score} >= ${THRESHOLD}
  UNION
  SELECT a.id, b.id FROM k a JOIN k b ON a.k2 = b.k2 AND a.id < b.id WHERE ${score} >= ${THRESHOLD};
`,
  );
  log('reference: blocking self-joins with fuzzystrmatch levenshtein in psql');
  let t0 = performance.now();
  await exec('psql', [ctx.databaseUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-f', script]);
  const referenceSeconds = (performance.now() - t0) / 1000;
  const referenceRecall = await recall(ctx, 'ref_pairs', planted);
  log(`reference: ${referenceSeconds.toFixed(2)} s, recall ${(referenceRecall * 100).toFixed(2)}%`);

  log('ours: dedupe workflow (report only), pages of 5,000 rows');
  t0 = performance.now();
  const params = { dataset: 'users', similar: { fields: ['name', 'email'], threshold: THRESHOLD }, blockBy: BLOCK_BY };
  const { runId } = await ctx.runs.start('dedupe', params, { runId: `bench-dedupe-${process.pid}`, startedBy: 'bench' });
  const result = (await ctx.client.workflow.getHandle(runId).result()) as RunResult;
  const oursSeconds = (performance.now() - t0) / 1000;
  // Pairs within our groups, for the same recall measure.
  await pool.query(
    `CREATE TEMP TABLE IF NOT EXISTS our_pairs AS SELECT x.id AS a, y.id AS b
     FROM dedupe_groups x JOIN dedupe_groups y ON y.execution_id = x.execution_id AND y.group_no = x.group_no AND x.id < y.id
     WHERE x.execution_id = $1`,
    [await runState.latestExecution(pool, runId)],
  );
  const oursRecall = await recall(ctx, 'our_pairs', planted);
  const { groups = 0, duplicateRows = 0 } = result.preview ?? {};
  log(`ours: ${oursSeconds.toFixed(2)} s, ${groups} groups of ${duplicateRows} rows, recall ${(oursRecall * 100).toFixed(2)}% (status ${result.status})`);
  return { oursSeconds, referenceSeconds, extra: { recall: round(oursRecall), referenceRecall: round(referenceRecall), groups, plantedPairs: planted } };
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;
