import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { previousDay } from '../../src/jobs/dates';
import { expectedStats, insertSeed, removeSeed, statsRows, type RollupSeed } from '../helpers/rollups';
import { declare, eventually, scheduledRuns, sync } from '../helpers/schedules';
import { historyText, startRun, uniqueId, useStackWithWorker, waitForRun, writeFixture } from '../helpers/stack';

// Rows created and deleted across 1990-03-01..07 (no other test has rows in 1990).
const seed: RollupSeed = {
  users: [
    { at: '1990-02-20T00:00:00Z', deleted: '1990-03-03T05:00:00Z' }, // existed before, deleted on the 3rd
    { at: '1990-02-27T10:00:00Z' },
    { at: '1990-03-01T00:00:00Z' }, // the first instant of the 1st
    { at: '1990-03-01T23:59:59Z', deleted: '1990-03-04T12:00:00Z' },
    { at: '1990-03-02T08:00:00Z', deleted: '1990-03-02T20:00:00Z' }, // created and deleted the same day: never counts
    { at: '1990-03-03T00:00:00Z' },
    { at: '1990-03-03T11:00:00Z' },
    { at: '1990-03-03T23:00:00Z' },
    { at: '1990-03-05T15:00:00Z', deleted: '1990-03-06T00:00:00Z' }, // deleted at the first instant of the 6th
    { at: '1990-03-07T23:00:00Z' },
    { at: '1990-03-08T00:00:00Z' }, // the day after the range
  ],
  posts: [
    { at: '1990-03-01T09:00:00Z' },
    { at: '1990-03-01T10:00:00Z', deleted: '1990-03-01T11:00:00Z' },
    { at: '1990-03-02T09:00:00Z', deleted: '1990-03-05T00:00:00Z' },
    { at: '1990-03-04T09:00:00Z' },
    { at: '1990-03-04T19:00:00Z' },
    { at: '1990-03-07T23:59:59Z' },
  ],
  activity: [
    [1, 'login', '1990-03-01T08:00:00Z'],
    [1, 'post', '1990-03-01T09:00:00Z'], // the same user twice on the 1st: once
    [2, 'login', '1990-03-01T12:00:00Z'],
    [5, 'login', '1990-03-03T13:00:00Z'],
    [6, 'comment', '1990-03-03T14:00:00Z'],
    [1, 'login', '1990-03-06T23:59:59Z'],
    [9, 'login', '1990-03-08T00:00:01Z'],
  ],
};

describe('aggregate (daily_stats)', () => {
  const fixture = useStackWithWorker();
  const stack = () => fixture.stack;

  it('a 7-day backfill of the daily schedule runs seven times and computes seven correct rows, as of each day', async () => {
    const p = uniqueId('agg');
    const users = await insertSeed(stack().pool, p, seed);
    try {
      await sync(stack(), declare(`schedules:\n  ${p}-daily:\n    cron: "0 2 * * *"\n    kind: aggregate\n`));
      // Due at 02:00 on the 2nd to the 8th: each computes the day before, the 1st to the 7th.
      const res = await stack().app.inject({ method: 'POST', url: `/schedules/${p}-daily/backfill`, payload: { from: '1990-03-02', to: '1990-03-08' } });
      assert.equal(res.statusCode, 202, res.body);
      assert.deepEqual(res.json<{ start: string; end: string }>(), { scheduleId: `${p}-daily`, from: '1990-03-02', to: '1990-03-08', start: '1990-03-02T00:00:00.000Z', end: '1990-03-08T23:59:59.000Z' });

      const runs = await eventually('seven finished runs', async () => {
        const listed = await scheduledRuns(stack(), `${p}-daily`);
        return listed.length === 7 && listed.every((r) => r.status !== 'running') ? listed : undefined;
      });
      assert.deepEqual(runs.map((r) => r.status), Array(7).fill('success'));
      const computedBy = new Map(runs.map((r) => [previousDay(new Date(r.scheduledAt!), 'UTC'), r.runId]));
      assert.deepEqual([...computedBy.keys()].sort(), ['1990-03-01', '1990-03-02', '1990-03-03', '1990-03-04', '1990-03-05', '1990-03-06', '1990-03-07'], 'each date once');

      const rows = await statsRows(stack().pool, '1990-03-01', '1990-03-07');
      assert.deepEqual(rows.map(({ run_id: _, ...figures }) => figures), expectedStats(seed, '1990-03-01', '1990-03-07'));
      assert.deepEqual(rows.map((r) => r.run_id), rows.map((r) => computedBy.get(r.date)), 'each row by the run due the day after');

      // Computing a date again by hand gives the same row.
      const again = await waitForRun(stack(), await startRun(stack(), 'aggregate', { date: '1990-03-04' }));
      assert.equal(again.status, 'success');
      const [row] = await statsRows(stack().pool, '1990-03-04', '1990-03-04');
      assert.deepEqual({ ...row, run_id: undefined }, { ...rows[3], run_id: undefined });
    } finally {
      await sync(stack(), []);
      await removeSeed(stack().pool, p, users);
    }
  });

  it('a range run computes every date once and counts it once', async () => {
    const p = uniqueId('aggrange');
    const shifted: RollupSeed = { ...seed, users: seed.users.map((u) => ({ at: u.at.replace('1990', '1991'), ...(u.deleted && { deleted: u.deleted.replace('1990', '1991') }) })), posts: [], activity: [] };
    const users = await insertSeed(stack().pool, p, shifted);
    try {
      const run = await waitForRun(stack(), await startRun(stack(), 'aggregate', { from: '1991-02-25', to: '1991-03-10' }));
      assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
      assert.deepEqual([run.result!.counts.processed, run.result!.counts.succeeded, run.result!.counts.failed], [14, 14, 0]);
      const rows = await statsRows(stack().pool, '1991-02-25', '1991-03-10');
      assert.deepEqual(rows.map(({ run_id: _, ...figures }) => figures), expectedStats(shifted, '1991-02-25', '1991-03-10'));
    } finally {
      await removeSeed(stack().pool, p, users);
    }
  });

  it('no row value reaches the run history', async () => {
    const p = uniqueId('aggmark');
    const marker = `MARKER-${p}`;
    const shifted: RollupSeed = {
      users: seed.users.map((u) => ({ at: u.at.replace('1990', '1992') })),
      posts: seed.posts.map((x) => ({ at: x.at.replace('1990', '1992') })),
      activity: seed.activity.map(([u, type, at]) => [u, type, at.replace('1990', '1992')]),
    };
    const users = await insertSeed(stack().pool, p, shifted, marker);
    try {
      const runId = await startRun(stack(), 'aggregate', { from: '1992-03-01', to: '1992-03-07' });
      assert.equal((await waitForRun(stack(), runId)).status, 'success');
      const history = await historyText(stack().client, runId);
      assert.ok(history.includes('1992-03-07'), 'the history is read');
      assert.ok(!history.includes(marker), 'no name, title, body or activity type in the history');
    } finally {
      await removeSeed(stack().pool, p, users);
    }
  });

  it('started by hand without a date, it computes the day before it started', async () => {
    const runId = await startRun(stack(), 'aggregate', {});
    const run = await waitForRun(stack(), runId);
    assert.equal(run.status, 'success');
    const { rows } = await stack().pool.query<{ date: string }>('SELECT date::text FROM daily_stats WHERE run_id = $1', [runId]);
    assert.deepEqual(rows, [{ date: previousDay(new Date(run.result!.startedAt), 'UTC') }]);
  });

  it('posts and user activity import like the other datasets', async () => {
    const p = uniqueId('postsimport');
    const posts = await writeFixture('posts.csv', `slug,author_id,title,published_at\n${p}-1,7,Hello,1995-05-01T10:00:00Z\n${p}-2,7,Again,1995-05-02T10:00:00Z\n${p}-3,x,Bad,1995-05-02T10:00:00Z\n`);
    const activity = await writeFixture(
      'activity.ndjson',
      [1, 2, 2].map((n) => JSON.stringify({ user_id: 900_000 + n, type: 'login', at: `1995-05-01T0${n}:00:00Z` })).join('\n') + '\n',
    );
    const imported = await Promise.all([
      waitForRun(stack(), await startRun(stack(), 'import', { source: posts, dataset: 'posts' })),
      waitForRun(stack(), await startRun(stack(), 'import', { source: activity, dataset: 'user_activity' })),
    ]);
    assert.deepEqual(imported.map((r) => [r.status, r.result!.counts.succeeded, r.result!.counts.failed]), [['partial', 2, 1], ['partial', 2, 1]]);
    const { rows } = await stack().pool.query('SELECT slug, user_id, title, posted_at FROM posts WHERE slug LIKE $1 ORDER BY slug', [`${p}-%`]);
    assert.deepEqual(rows, [
      { slug: `${p}-1`, user_id: 7, title: 'Hello', posted_at: new Date('1995-05-01T10:00:00Z') },
      { slug: `${p}-2`, user_id: 7, title: 'Again', posted_at: new Date('1995-05-02T10:00:00Z') },
    ]);
    const errors = await stack().app.inject({ method: 'GET', url: `/runs/${imported[1].runId}/errors` });
    assert.equal(errors.json<{ errors: { code: string }[] }>().errors[0]!.code, 'DUPLICATE_KEY', 'the same user, type and time twice');
    await stack().pool.query('DELETE FROM posts WHERE slug LIKE $1', [`${p}-%`]);
    await stack().pool.query('DELETE FROM user_activity WHERE user_id > 900000');
  });
});
