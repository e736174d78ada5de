import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import type { Pool } from '../../src/db/pool';
import { download, getRun, historyText, openStack, spawnWorker, startRun, startWorker, testConfig, uniqueId, waitForRun, type Stack } from '../helpers/stack';

const FIRST = ['Alice', 'Bernard', 'Chiara', 'Dmitri', 'Eleanor', 'Farid', 'Greta', 'Hiroshi', 'Ingrid', 'Jamal', 'Katarina', 'Lorenzo', 'Mariana', 'Nikolai', 'Olivia', 'Priya', 'Quentin', 'Rosalind', 'Sebastian', 'Tamsin'];
const LAST = ['Abernathy', 'Blackwood', 'Castellano', 'Delacroix', 'Eriksson', 'Fitzgerald', 'Gallagher', 'Hargreaves', 'Ivanova', 'Jorgensen'];

/** One typo: the letter at `at` dropped. */
const drop = (s: string, at: number) => s.slice(0, at) + s.slice(at + 1);

interface Person {
  email: string;
  name: string;
  signup: string;
  lastLogin?: string;
}

/**
 * 200 distinct people (every first × last name, signups spread over 10 days, so each block holds
 * about 20 of them), then the duplicates: near ones (a letter dropped from the last name and the
 * email) and exact ones (the same name in other case and spacing, the same day, another email).
 */
function people(p: string) {
  const clean: Person[] = [];
  FIRST.forEach((f, i) =>
    LAST.forEach((l, j) => clean.push({ email: `${p}.${f}.${l}@example.com`.toLowerCase(), name: `${f} ${l}`, signup: `2024-03-${String(10 + ((i + j) % 10)).padStart(2, '0')}` })),
  );
  const near = [3, 27, 58, 91, 140, 177].map((i): [number, Person] => {
    const o = clean[i]!;
    const at = o.name.length - 3;
    return [i, { email: o.email.replace(o.name.split(' ')[1]!.toLowerCase(), drop(o.name.split(' ')[1]!.toLowerCase(), 3)), name: drop(o.name, at), signup: o.signup, lastLogin: '2024-06-01T10:00:00Z' }];
  });
  const exact = [10, 111, 199].map((i): [number, Person] => {
    const o = clean[i]!;
    return [i, { email: o.email.replace('@', '+again@'), name: `  ${o.name.toUpperCase().replace(' ', '   ')} `, signup: o.signup }];
  });
  return { clean, near, exact };
}

async function insert(pool: Pool, rows: readonly Person[]): Promise<number[]> {
  const { rows: ids } = await pool.query<{ id: number }>(
    'INSERT INTO users (email, name, signup_date, last_login_at) SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::timestamptz[]) RETURNING id',
    [rows.map((r) => r.email), rows.map((r) => r.name), rows.map((r) => r.signup), rows.map((r) => r.lastLogin ?? null)],
  );
  return ids.map((r) => r.id);
}

const dedupeParams = (p: string, extra: object = {}) => ({
  dataset: 'users',
  where: { field: 'email', op: 'starts_with', value: `${p}.` },
  exact: ['name', 'signup_date'],
  similar: { fields: ['name', 'email'], threshold: 0.9 },
  // The end of the name, or the signup day: a typo at the end of a name is still caught by the day.
  blockBy: [[{ field: 'name', suffix: 4 }], ['signup_date']],
  ...extra,
});

/** The report CSV of a dedupe run, downloaded through the API, as its result describes it (type, bytes, SHA-256, rows). */
async function report(stack: Stack, runId: string): Promise<Record<string, string>[]> {
  const output = (await getRun(stack, runId)).result!.outputs[0]!;
  assert.equal(output.download, `/runs/${runId}/download`);
  const file = await download(stack, runId, '?output=0');
  assert.equal(file.status, 200);
  assert.equal(file.headers['content-type'], 'text/csv; charset=utf-8');
  assert.equal(file.body.length, output.bytes);
  assert.equal(createHash('sha256').update(file.body).digest('hex'), output.sha256);
  const rows: Record<string, string>[] = parse(file.body.toString('utf8'), { columns: true });
  assert.equal(rows.length, output.rows);
  return rows;
}

describe('dedupe', () => {
  let stack: Stack;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  before(async () => {
    stack = await openStack(testConfig({ BATCHFLOW_SLICE_SECONDS: '1' }));
    worker = await startWorker(stack.config);
  });
  after(async () => {
    await worker.stop();
    await stack.close();
  });

  it('finds the planted near and exact duplicates, no pair in the clean set, and reports each group with ids and scores', async () => {
    const p = uniqueId('dd');
    const { clean, near, exact } = people(p);
    const ids = await insert(stack.pool, clean);
    const nearIds = await insert(stack.pool, near.map(([, d]) => d));
    const exactIds = await insert(stack.pool, exact.map(([, d]) => d));
    // Signup days and last-name endings hold about 20 people each: over maxBlockSize, each is compared with its 20 neighbours, which here is all.
    const runId = await startRun(stack, 'dedupe', dedupeParams(p, { batchSize: 50, maxBlockSize: 10 }));
    const run = await waitForRun(stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    const preview = run.result!.preview!;
    assert.deepEqual({ scanned: preview.scanned, groups: preview.groups, duplicateRows: preview.duplicateRows, matched: preview.matched }, { scanned: 209, groups: 9, duplicateRows: 18, matched: 9 });
    assert.match(run.result!.warnings.join(' '), /^20 block\(s\) held more than maxBlockSize \(10\) rows: their rows were compared with their 20 nearest neighbours only/);

    const rows = await report(stack, runId);
    const groups = new Map<string, string[]>();
    for (const r of rows) groups.set(r.group!, [...(groups.get(r.group!) ?? []), r.id!]);
    const expected = [...near.map(([i], k) => [ids[i]!, nearIds[k]!]), ...exact.map(([i], k) => [ids[i]!, exactIds[k]!])].map((g) => g.map(String).sort());
    assert.deepEqual([...groups.values()].map((g) => g.sort()).sort(), expected.sort());
    const exactRow = rows.find((r) => r.id === String(exactIds[0]));
    assert.deepEqual([exactRow?.match, exactRow?.score, exactRow?.keep], ['exact', '1', 'false']);
    const nearRow = rows.find((r) => r.id === String(nearIds[0]));
    assert.equal(nearRow?.match, 'near');
    assert.ok(Number(nearRow?.score) >= 0.9 && Number(nearRow?.score) < 1, nearRow?.score);
    assert.equal(rows.find((r) => r.id === String(ids[near[0]![0]]))?.keep, 'true', 'the earliest row of a group is kept');
    assert.equal(await countOwn(stack.pool, p), 209, 'a run without merge changes nothing');
  });

  it('merges after approval: keeps the oldest row of each group, fills its empty columns from the others, removes the rest', async () => {
    const p = uniqueId('ddm');
    const { clean, near, exact } = people(p);
    const ids = await insert(stack.pool, clean);
    await insert(stack.pool, [...near, ...exact].map(([, d]) => d));
    const runId = await startRun(stack, 'dedupe', dedupeParams(p, { merge: { fillEmpty: true }, requiresConfirmation: true }));
    const waiting = await waitForRun(stack, runId, (r) => r.progress?.step === 'awaiting_approval');
    assert.equal(waiting.progress!.preview!.matched, 9);
    assert.equal(await countOwn(stack.pool, p), 209, 'nothing removed before approval');
    const approved = await stack.app.inject({ method: 'POST', url: `/runs/${runId}/approve`, payload: { comment: 'groups checked' } });
    assert.equal(approved.statusCode, 202, approved.body);
    const run = await waitForRun(stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    assert.deepEqual({ ...run.result!.approval, at: undefined }, { decision: 'approved', by: 'test-admin', at: undefined, comment: 'groups checked' });
    assert.equal(run.result!.counts.succeeded, 9);
    assert.equal(await countOwn(stack.pool, p), 200);
    const { rows } = await stack.pool.query<{ id: number; last_login_at: Date | null }>('SELECT id, last_login_at FROM users WHERE id = ANY($1) ORDER BY id', [near.map(([i]) => ids[i]!)]);
    assert.deepEqual(rows.map((r) => r.last_login_at?.toISOString()), near.map(() => '2024-06-01T10:00:00.000Z'), 'kept rows took the removed rows\' last login');
  });

  it('a dry run of a merge previews and removes nothing', async () => {
    const p = uniqueId('ddd');
    const { clean, exact } = people(p);
    const ids = await insert(stack.pool, [...clean, ...exact.map(([, d]) => d)]);
    // Kept: the first by email, and "ada+again@" sorts before "ada@".
    const run = await waitForRun(stack, await startRun(stack, 'dedupe', dedupeParams(p, { merge: { keep: { by: 'email' } }, dryRun: true })));
    assert.equal(run.status, 'success');
    assert.deepEqual([run.result!.preview!.matched, run.result!.counts.succeeded], [3, 0]);
    assert.deepEqual(run.result!.preview!.sample!.map((g) => g.keep).sort(), ids.slice(-3).sort());
    assert.equal(await countOwn(stack.pool, p), 203);
  });

  it('refuses params that name no column, before starting', async () => {
    const res = await stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'dedupe', params: { dataset: 'users', similar: { fields: ['nmae'] }, blockBy: [['name']] } } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json<{ field: string }>().field, 'params.similar.fields.0');
  });

  it('keeps row values out of workflow history', async () => {
    const p = uniqueId('ddh');
    const marker = `Zq${uniqueId('marker').replace(/-/g, '')}`;
    const { clean } = people(p);
    await insert(stack.pool, [...clean.slice(0, 20), { email: `${p}.m1@example.com`, name: `${marker} Smith`, signup: '2024-03-10' }, { email: `${p}.m2@example.com`, name: `${marker} Smith`, signup: '2024-03-10' }]);
    const runId = await startRun(stack, 'dedupe', dedupeParams(p, { merge: {} }));
    const run = await waitForRun(stack, runId);
    assert.equal(run.status, 'success');
    assert.equal(run.result!.counts.succeeded, 1);
    assert.ok(!(await historyText(stack.client, runId)).includes(marker), 'a row value reached workflow history');
    assert.ok(JSON.stringify(await report(stack, runId)).includes(marker), 'the report (object store) has the values');
  });
});

async function countOwn(pool: Pool, p: string): Promise<number> {
  return (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE email LIKE $1', [`${p}.%`])).rows[0]!.n;
}

describe('dedupe with a worker killed mid-run (SIGKILL)', () => {
  let stack: Stack;
  before(async () => {
    stack = await openStack(testConfig({ BATCHFLOW_SLICE_SECONDS: '1' }));
  });
  after(() => stack.close());

  it('completes with every group found once and every duplicate removed once', async () => {
    const rows = 120_000;
    const p = uniqueId('ddk');
    // Every 100th person signed up twice: the same name and day as the one before, another email.
    await stack.pool.query(
      `INSERT INTO users (email, name, signup_date)
       SELECT $1 || '.' || g || '@example.com', 'Person ' || CASE WHEN g % 100 = 0 THEN g - 1 ELSE g END, DATE '2024-01-01' + ((CASE WHEN g % 100 = 0 THEN g - 1 ELSE g END) % 365)
       FROM generate_series(1, $2::int) g`,
      [p, rows],
    );
    let worker = spawnWorker(stack.config);
    try {
      const runId = await startRun(stack, 'dedupe', { dataset: 'users', where: { field: 'email', op: 'starts_with', value: `${p}.` }, exact: ['name', 'signup_date'], merge: {}, batchSize: 2_000 });
      await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= 20_000);
      worker.kill('SIGKILL');
      await worker.exited;
      const { rows: grouped } = await stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM dedupe_groups WHERE execution_id IN (SELECT execution_id FROM run_executions WHERE workflow_id = $1)', [runId]);
      assert.equal(grouped[0]!.n, 0, 'killed before the duplicates were grouped');
      worker = spawnWorker(stack.config);
      const run = await waitForRun(stack, runId, undefined, 240_000);
      assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
      assert.deepEqual([run.result!.preview!.scanned, run.result!.preview!.groups, run.result!.counts.succeeded], [rows, rows / 100, rows / 100]);
      assert.equal(await countOwn(stack.pool, p), rows - rows / 100);
      const { rows: left } = await stack.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM (SELECT name, signup_date FROM users WHERE email LIKE $1 GROUP BY 1, 2 HAVING count(*) > 1) d',
        [`${p}.%`],
      );
      assert.equal(left[0]!.n, 0, 'no duplicate left');
      assert.equal((await getRun(stack, runId)).result!.outputs.length, 1);
    } finally {
      worker.kill('SIGTERM');
      await worker.exited;
    }
  });
});
