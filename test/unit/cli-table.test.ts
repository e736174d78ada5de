import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTable, timeArg } from '../../src/cli/table';

describe('CLI output and time flags', () => {
  it('time flags take ISO 8601 as it is, or a time ago', () => {
    const now = Date.parse('2026-11-23T12:00:00.000Z');
    assert.equal(timeArg('2026-11-01T00:00:00Z', now), '2026-11-01T00:00:00Z');
    assert.equal(timeArg('30m', now), '2026-11-23T11:30:00.000Z');
    assert.equal(timeArg('24h', now), '2026-11-22T12:00:00.000Z');
    assert.equal(timeArg('7d', now), '2026-11-16T12:00:00.000Z');
    assert.equal(timeArg(undefined, now), undefined);
  });

  it('tables align their columns and group thousands', () => {
    assert.equal(formatTable(['dataset', 'rows'], [['users', 1205], ['products', 7]]), 'dataset   rows\nusers     1,205\nproducts  7');
  });
});
