import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { users } from '../helpers/datasets';
import { CopyBuffer, loadBatch, loadStatements, type StagedBatch, type StagedRow } from '../../src/db/loader';
import { createPool, inTransaction, type Pool } from '../../src/db/pool';
import { runState } from '../../src/db/queries';
import type { ImportMode } from '../../src/jobs/import';

/** Rows as one staged batch, as the import's reader builds it. */
function stageRows(rows: readonly StagedRow[]): StagedBatch {
  const copy = new CopyBuffer();
  for (const row of rows) copy.add(row);
  return { copy: copy.take(), count: rows.length, firstRow: rows[0]?.row ?? 0, lastRow: rows.at(-1)?.row ?? 0 };
}

// The loader against a real Postgres: `npm test` provides one (DATABASE_URL); `npm run test:unit` skips this.
const databaseUrl = process.env.DATABASE_URL;

describe('cross-batch duplicate keys', { skip: !databaseUrl && 'needs DATABASE_URL (npm test starts Postgres)' }, () => {
  let pool: Pool;
  before(() => {
    pool = createPool(databaseUrl!, 2);
  });
  after(() => pool.end());

  const columns = ['email', 'name'];
  /** Loads batches of [row, email, name] in one transaction each, as the batch runner does. */
  async function loadAll(mode: ImportMode, batches: [number, string, string][][]) {
    const runId = `dups-${randomUUID()}`;
    const sql = loadStatements(users, columns, mode);
    const outcomes = [];
    for (const batch of batches) {
      const rows: StagedRow[] = batch.map(([row, email, name]) => ({ row, line: row + 1, key: email, values: [email, name] }));
      outcomes.push(await inTransaction(pool, (client) => loadBatch(client, runId, sql, mode, stageRows(rows))));
    }
    await runState.forgetImportKeys(pool, runId);
    return outcomes.map((o) => ({ ...o, rejected: o.rejected.map((r) => [r.row, r.code, r.firstSeen]) }));
  }
  const names = async (emails: string[]) =>
    (await pool.query<{ email: string; name: string }>('SELECT email, name FROM users WHERE email = ANY($1) ORDER BY email', [emails])).rows.map((r) => [r.email, r.name]);

  it('upsert: a key of an earlier batch is rejected naming that batch, and its row is not overwritten', async () => {
    const p = randomUUID();
    const [a, b, c] = ['a', 'b', 'c'].map((x) => `${x}.${p}@example.com`) as [string, string, string];
    await pool.query("INSERT INTO users (email, name) VALUES ($1, 'before the run')", [c]);
    const outcomes = await loadAll('upsert', [
      [[1, a, 'A1'], [2, c, 'C1']],
      [[3, b, 'B2'], [4, a, 'A2'], [5, c, 'C2']],
    ]);
    assert.deepEqual(outcomes, [
      { inserted: 1, updated: 1, skipped: 0, rejected: [] },
      { inserted: 1, updated: 0, skipped: 0, rejected: [[4, 'DUPLICATE_KEY', { rows: [1, 2] }], [5, 'DUPLICATE_KEY', { rows: [1, 2] }]] },
    ]);
    assert.deepEqual(await names([a, b, c]), [[a, 'A1'], [b, 'B2'], [c, 'C1']]);
  });

  it('skip-existing: repeats of written and of skipped keys are both duplicates', async () => {
    const p = randomUUID();
    const [a, x] = ['a', 'x'].map((k) => `${k}.${p}@example.com`) as [string, string];
    await pool.query("INSERT INTO users (email, name) VALUES ($1, 'before the run')", [x]);
    const outcomes = await loadAll('skip-existing', [[[1, x, 'X1'], [2, a, 'A1']], [[3, a, 'A2'], [4, x, 'X2']]]);
    assert.deepEqual(outcomes, [
      { inserted: 1, updated: 0, skipped: 1, rejected: [] },
      { inserted: 0, updated: 0, skipped: 0, rejected: [[3, 'DUPLICATE_KEY', { rows: [1, 2] }], [4, 'DUPLICATE_KEY', { row: 1 }]] },
    ]);
    assert.deepEqual(await names([a, x]), [[a, 'A1'], [x, 'before the run']]);
  });

  it('insert: a present key is ALREADY_EXISTS once, then a duplicate', async () => {
    const p = randomUUID();
    const [a, x] = ['a', 'x'].map((k) => `${k}.${p}@example.com`) as [string, string];
    await pool.query("INSERT INTO users (email, name) VALUES ($1, 'before the run')", [x]);
    const outcomes = await loadAll('insert', [[[1, x, 'X1'], [2, a, 'A1']], [[3, x, 'X2'], [4, a, 'A2']]]);
    assert.deepEqual(outcomes, [
      { inserted: 1, updated: 0, skipped: 0, rejected: [[1, 'ALREADY_EXISTS', undefined]] },
      { inserted: 0, updated: 0, skipped: 0, rejected: [[3, 'DUPLICATE_KEY', { row: 1 }], [4, 'DUPLICATE_KEY', { rows: [1, 2] }]] },
    ]);
  });

  it('a batch rolled back leaves nothing that makes its replay a duplicate', async () => {
    const p = randomUUID();
    const runId = `dups-${randomUUID()}`;
    const sql = loadStatements(users, columns, 'upsert');
    const rows: StagedRow[] = [{ row: 1, line: 2, key: `a.${p}@example.com`, values: [`a.${p}@example.com`, 'A'] }];
    await assert.rejects(
      inTransaction(pool, async (client) => {
        await loadBatch(client, runId, sql, 'upsert', stageRows(rows));
        throw new Error('crash after the load');
      }),
    );
    const replay = await inTransaction(pool, (client) => loadBatch(client, runId, sql, 'upsert', stageRows(rows)));
    assert.deepEqual(replay, { inserted: 1, updated: 0, skipped: 0, rejected: [] });
    await runState.forgetImportKeys(pool, runId);
  });
});
