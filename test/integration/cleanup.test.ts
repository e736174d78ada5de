import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pool } from '../../src/db/pool';
import { startRun, uniqueId, useStackWithWorker, waitForRun, type Stack } from '../helpers/stack';

// The shipped rules act on whole tables: this is the only test file that creates sessions and
// tokens or soft-deletes users, and each test leaves no expired row behind, so per-rule counts
// are exact. Assertions on rows stay scoped to a test's own prefix.

const TOKEN_TABLES = { sessions: 'token', password_reset_tokens: 'token_hash', verification_tokens: 'token_hash' } as const;
type TokenTable = keyof typeof TOKEN_TABLES;

/** A live user, owner of a test's tokens. */
async function seedOwner(pool: Pool, prefix: string): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(`INSERT INTO users (email, name) VALUES ($1, 'Owner') RETURNING id`, [`${prefix}.owner@example.com`]);
  return rows[0]!.id;
}

/** `count` rows of a token table for `userId`, named `<prefix>.<label>.<n>`, expiring at now() + `expiresIn`. */
async function seedTokens(pool: Pool, table: TokenTable, userId: number, prefix: string, label: string, count: number, expiresIn: string): Promise<void> {
  await pool.query(
    `INSERT INTO ${table} (user_id, ${TOKEN_TABLES[table]}, expires_at, created_at)
     SELECT $1, $2 || '.' || g, now() + $4::interval, now() - interval '2 days' FROM generate_series(1, $3::int) g`,
    [userId, `${prefix}.${label}`, count, expiresIn],
  );
}

/** A test's remaining tokens in a table, by label (the middle part of the token). */
async function tokensLeft(pool: Pool, table: TokenTable, prefix: string): Promise<Record<string, number>> {
  const column = TOKEN_TABLES[table];
  const { rows } = await pool.query<{ label: string; n: number }>(
    `SELECT split_part(${column}, '.', 2) AS label, count(*)::int AS n FROM ${table} WHERE ${column} LIKE $1 GROUP BY 1 ORDER BY 1`,
    [`${prefix}.%`],
  );
  return Object.fromEntries(rows.map((r) => [r.label, r.n]));
}

async function runCleanup(stack: Stack, params: object) {
  return waitForRun(stack, await startRun(stack, 'cleanup', params));
}

describe('cleanup', () => {
  const fixture = useStackWithWorker();
  const pool = () => fixture.stack.pool;

  it('the shipped rules delete exactly the expired tokens and the users soft-deleted over 30 days ago, with counts per rule', async () => {
    const p = uniqueId('clean');
    const owner = await seedOwner(pool(), p);
    // Several batches of expired sessions (batch size 1,000), a few of each token kind.
    await seedTokens(pool(), 'sessions', owner, p, 'expired', 2_345, '-1 hour');
    await seedTokens(pool(), 'sessions', owner, p, 'valid', 40, '1 day');
    await seedTokens(pool(), 'password_reset_tokens', owner, p, 'expired', 7, '-1 minute');
    await seedTokens(pool(), 'password_reset_tokens', owner, p, 'valid', 3, '1 hour');
    await seedTokens(pool(), 'verification_tokens', owner, p, 'expired', 11, '-30 days');
    await seedTokens(pool(), 'verification_tokens', owner, p, 'valid', 5, '7 days');
    await pool().query(
      `INSERT INTO users (email, name, deleted_at)
       SELECT $1 || '.' || kind || '.' || g || '@example.com', 'Gone ' || g, now() - (days || ' days')::interval
       FROM (VALUES ('old', 40, 620), ('recent', 10, 30)) AS v (kind, days, n), generate_series(1, n) g`,
      [p],
    );
    // An old soft-deleted user's session goes with it (ON DELETE CASCADE), outside any rule's count.
    const { rows: oldUser } = await pool().query<{ id: number }>('SELECT id FROM users WHERE email = $1', [`${p}.old.1@example.com`]);
    await seedTokens(pool(), 'sessions', oldUser[0]!.id, p, 'cascaded', 1, '1 day');

    const run = await runCleanup(fixture.stack, {});
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    const succeeded = Object.fromEntries(Object.entries(run.result!.steps!).map(([rule, s]) => [rule, [s.status, s.counts?.succeeded]]));
    assert.deepEqual(succeeded, {
      expired_sessions: ['success', 2_345],
      expired_password_reset_tokens: ['success', 7],
      expired_verification_tokens: ['success', 11],
      soft_deleted_users: ['success', 620],
    });
    assert.equal(run.result!.counts.succeeded, 2_345 + 7 + 11 + 620);
    assert.equal(run.result!.counts.failed, 0);

    assert.deepEqual(await tokensLeft(pool(), 'sessions', p), { valid: 40 });
    assert.deepEqual(await tokensLeft(pool(), 'password_reset_tokens', p), { valid: 3 });
    assert.deepEqual(await tokensLeft(pool(), 'verification_tokens', p), { valid: 5 });
    const { rows: users } = await pool().query<{ kind: string; n: number }>(
      `SELECT split_part(split_part(email, '@', 1), '.', 2) AS kind, count(*)::int AS n FROM users WHERE email LIKE $1 GROUP BY 1 ORDER BY 1`,
      [`${p}.%`],
    );
    assert.deepEqual(users, [{ kind: 'owner', n: 1 }, { kind: 'recent', n: 30 }]);
  });

  it('runs a rule of its own: its dataset, its filter, its batch size', async () => {
    const p = uniqueId('own');
    const owner = await seedOwner(pool(), p);
    await seedTokens(pool(), 'sessions', owner, p, 'stale', 9, '1 day');
    await seedTokens(pool(), 'sessions', owner, p, 'kept', 4, '1 day');
    const rule = {
      name: 'stale_sessions',
      dataset: 'sessions',
      // Not expired, but created over a day ago and marked stale: a filter the shipped rules lack.
      where: { and: [{ field: 'token', op: 'starts_with', value: `${p}.stale.` }, { field: 'created_at', op: 'lt', value: 'now - 1 day' }] },
      batchSize: 2,
    };
    const run = await runCleanup(fixture.stack, { rules: [rule] });
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.equal(run.result!.steps!.stale_sessions!.counts!.succeeded, 9);
    assert.equal(run.result!.counts.succeeded, 9);
    assert.deepEqual(await tokensLeft(pool(), 'sessions', p), { kept: 4 });
  });

  it('a dry run counts and samples per rule and deletes nothing', async () => {
    const p = uniqueId('dry');
    const owner = await seedOwner(pool(), p);
    await seedTokens(pool(), 'sessions', owner, p, 'expired', 6, '-1 day');
    await seedTokens(pool(), 'verification_tokens', owner, p, 'expired', 2, '-1 day');
    const rules = ['expired_sessions', 'expired_verification_tokens'];

    const dry = await runCleanup(fixture.stack, { rules, dryRun: true, sampleSize: 3 });
    assert.equal(dry.status, 'success', JSON.stringify(dry.result?.error ?? dry.error));
    assert.equal(dry.result!.preview!.matched, 8);
    assert.deepEqual(
      Object.entries(dry.result!.preview!.steps!).map(([rule, s]) => [rule, s.matched, s.sample!.length]),
      [['expired_sessions', 6, 3], ['expired_verification_tokens', 2, 2]],
    );
    // Tokens are credentials: the preview shows which rows, never their values.
    const sessionSample = dry.result!.preview!.steps!.expired_sessions!.sample!;
    assert.ok(sessionSample.every((row) => row.token === '[redacted]' && typeof row.id === 'number' && row.user_id === owner), JSON.stringify(sessionSample));
    assert.deepEqual(Object.values(dry.result!.steps!).map((s) => s.status), ['skipped', 'skipped']);
    assert.equal(dry.result!.counts.succeeded, 0);
    assert.deepEqual(await tokensLeft(pool(), 'sessions', p), { expired: 6 });
    assert.deepEqual(await tokensLeft(pool(), 'verification_tokens', p), { expired: 2 });

    // The same rules for real delete what the preview counted (and leave nothing expired behind).
    const real = await runCleanup(fixture.stack, { rules });
    assert.equal(real.result!.counts.succeeded, 8);
    assert.deepEqual(await tokensLeft(pool(), 'sessions', p), {});
  });

  describe('bad rules get a 400 naming the field', () => {
    const customRule = (where: object) => ({ name: 'mine', dataset: 'sessions', where });
    const cases: [string, object, string, RegExp][] = [
      ['an unknown shipped rule', { rules: ['expired_cookies'] }, 'params.rules.0', /must be a shipped rule \(expired_sessions, /],
      ['a field that tries SQL', { rules: [customRule({ field: 'expires_at; drop table sessions', op: 'lt', value: 'now' })] }, 'params.rules.0.where.field', /must be a column of sessions/],
      ['a value that tries SQL', { rules: [customRule({ field: 'expires_at', op: 'lt', value: "' or 1=1 --" })] }, 'params.rules.0.where.value', /ISO timestamp or a relative time/],
      ['an operator outside the list', { rules: [customRule({ field: 'expires_at', op: 'like', value: 'x' })] }, 'params.rules.0.where.op', /must be one of eq, /],
      ['a rule without a name', { rules: [{ dataset: 'sessions', where: { field: 'expires_at', op: 'lt', value: 'now' } }] }, 'params.rules.0', /rule object .*name/],
      ['an unknown dataset', { rules: [{ name: 'x', dataset: 'pg_authid', where: { field: 'id', op: 'not_null' } }] }, 'params.rules.0.dataset', /"pg_authid" is not a declared dataset/],
      ['a rule twice', { rules: ['expired_sessions', 'expired_sessions'] }, 'params.rules.1', /appears twice/],
      ['a batch too large', { rules: [{ ...customRule({ field: 'expires_at', op: 'lt', value: 'now' }), batchSize: 1_000_000 }] }, 'params.rules.0.batchSize', /<=10000/],
    ];
    for (const [name, params, field, message] of cases) {
      it(name, async () => {
        const res = await fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'cleanup', params } });
        assert.equal(res.statusCode, 400, res.body);
        const body = res.json<{ field: string; message: string }>();
        assert.equal(body.field, field, body.message);
        assert.match(body.message, message);
      });
    }

    it('and the tables are intact', async () => {
      const { rows } = await fixture.stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions');
      assert.ok(rows[0]!.n > 0);
    });
  });
});
