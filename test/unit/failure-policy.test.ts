import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { FailurePolicy, finalFailure } from '../../src/activities/failure-policy';
import { isPermanentDbError, isRowRefusal } from '../../src/db/pool';

const dbError = (code: string, message = `error ${code}`) => Object.assign(new pg.DatabaseError(message, 0, 'error'), { code });

describe('database errors', () => {
  it('rows refused (constraints, bad values, triggers) are permanent and reportable as row errors', () => {
    for (const code of ['23505', '23514', '22003', '22007', '21000', 'P0001', '27000', '44000']) {
      assert.equal(isRowRefusal(dbError(code)), true, code);
      assert.equal(isPermanentDbError(dbError(code)), true, code);
    }
  });

  it('errors about the database itself (42, 28, 54 and the like) are permanent, not row refusals', () => {
    for (const code of ['42703', '42P01', '42501', '42601', '28P01', '28000', '54000', '54001', '0A000', '3D000', '3F000', '2F005']) {
      assert.equal(isPermanentDbError(dbError(code)), true, code);
      assert.equal(isRowRefusal(dbError(code)), false, code);
    }
  });

  it('connections, deadlocks, serialization, resources, lock timeouts, shutdowns are retried', () => {
    for (const code of ['08006', '40001', '40P01', '53300', '53100', '55P03', '57P01', '57P03', '58030', 'XX000']) assert.equal(isPermanentDbError(dbError(code)), false, code);
    assert.equal(isPermanentDbError(new Error('Connection terminated unexpectedly')), false);
  });
});

describe('failure policy', () => {
  it('a permanent database error fails at once with the database message and its SQLSTATE', () => {
    const failure = finalFailure(dbError('42703', 'column "x" does not exist'), 1, 25);
    assert.ok(failure instanceof ApplicationFailure);
    assert.deepEqual([failure.type, failure.nonRetryable, failure.message], ['DATABASE_ERROR', true, 'column "x" does not exist (SQLSTATE 42703)']);
  });

  it('other errors are retried until the last allowed attempt, which ends with the last error', () => {
    const err = new Error('Connection terminated unexpectedly');
    assert.equal(finalFailure(err, 24, 25), err);
    const last = finalFailure(err, 25, 25);
    assert.ok(last instanceof ApplicationFailure);
    assert.deepEqual([last.type, last.nonRetryable, last.message], ['RETRIES_EXHAUSTED', true, 'gave up after 25 attempts; the last one failed with: Connection terminated unexpectedly']);
  });

  it('non-retryable failures and cancellations pass through untouched', () => {
    const bad = ApplicationFailure.nonRetryable('bad input', 'INVALID_PARAMS');
    assert.equal(finalFailure(bad, 25, 25), bad);
    const cancelled = new CancelledFailure('cancelled');
    assert.equal(finalFailure(cancelled, 25, 25), cancelled);
  });

  it('an attempt past the bound (the earlier ones never answered: a worker died) ends at once without running', async () => {
    const env = new MockActivityEnvironment({ attempt: 4 });
    let ran = false;
    const policy = new FailurePolicy(env.context, 3);
    const failure = await env
      .run(() => policy.execute({ args: [], headers: {} }, () => Promise.resolve((ran = true))))
      .catch((err: unknown) => err);
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.type, 'RETRIES_EXHAUSTED');
    assert.equal(ran, false);
  });
});
