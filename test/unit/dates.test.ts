import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aggregateParamsSchema, aggregateRange } from '../../src/jobs/aggregate';
import { addDays, dateIn, datesBetween, dayCount, previousDay, startOfDay } from '../../src/jobs/dates';
import { reportParamsSchema, reportWindow } from '../../src/jobs/report';

const firstIssue = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) => {
  const i = r.error?.issues[0];
  return i && `${i.path.join('.')}: ${i.message}`;
};

describe('date math', () => {
  it('adds days across months, leap days and years', () => {
    assert.equal(addDays('2024-02-28', 1), '2024-02-29');
    assert.equal(addDays('2023-02-28', 1), '2023-03-01');
    assert.equal(addDays('2026-12-31', 1), '2027-01-01');
    assert.equal(addDays('2026-03-01', -1), '2026-02-28');
    assert.equal(dayCount('2026-03-01', '2026-03-07'), 7);
    assert.equal(dayCount('2026-03-07', '2026-03-01'), 0);
    assert.deepEqual(datesBetween('2024-02-27', '2024-03-01'), ['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01']);
  });

  it('places an instant on the calendar of a time zone', () => {
    const t = new Date('2026-03-10T23:30:00Z');
    assert.equal(dateIn(t, 'UTC'), '2026-03-10');
    assert.equal(dateIn(t, 'Europe/Paris'), '2026-03-11');
    assert.equal(dateIn(t, 'America/New_York'), '2026-03-10');
    // A run due at 02:00 computes the day before, in its own time zone.
    assert.equal(previousDay(new Date('2026-03-11T02:00:00Z'), 'UTC'), '2026-03-10');
    assert.equal(previousDay(new Date('2026-03-10T23:30:00Z'), 'Europe/Paris'), '2026-03-10');
  });

  it('finds where a day starts, DST changes included', () => {
    assert.equal(startOfDay('2026-03-01', 'UTC').toISOString(), '2026-03-01T00:00:00.000Z');
    assert.equal(startOfDay('2026-01-15', 'Europe/Paris').toISOString(), '2026-01-14T23:00:00.000Z');
    assert.equal(startOfDay('2026-07-15', 'Europe/Paris').toISOString(), '2026-07-14T22:00:00.000Z');
    // Paris moves to summer time at 02:00 on 2026-03-29: the day still starts at local midnight (UTC+1).
    assert.equal(startOfDay('2026-03-29', 'Europe/Paris').toISOString(), '2026-03-28T23:00:00.000Z');
    assert.equal(startOfDay('2026-03-30', 'Europe/Paris').toISOString(), '2026-03-29T22:00:00.000Z');
    // Santiago skips midnight when it moves to summer time (2026-09-06): the day starts at 01:00 local.
    assert.equal(dateIn(startOfDay('2026-09-06', 'America/Santiago'), 'America/Santiago'), '2026-09-06');
  });
});

describe('aggregate params', () => {
  it('take one date, a range, or neither (the schedule decides)', () => {
    assert.deepEqual(aggregateParamsSchema.parse({ date: '2026-03-01' }), { rollups: ['daily_stats'], date: '2026-03-01' });
    assert.deepEqual(aggregateRange(aggregateParamsSchema.parse({ from: '2026-03-01', to: '2026-03-31' }), new Date()), { from: '2026-03-01', to: '2026-03-31' });
    // Without dates: the day before the nominal time, not the clock.
    assert.deepEqual(aggregateRange(aggregateParamsSchema.parse({}), new Date('2025-03-15T02:00:00Z')), { from: '2025-03-14', to: '2025-03-14' });
  });

  it('refuse what does not make a range, and unknown keys', () => {
    assert.equal(firstIssue(aggregateParamsSchema.safeParse({ date: '2026-03-01', from: '2026-03-01', to: '2026-03-02' })), 'date: give date, or from and to, not both');
    assert.equal(firstIssue(aggregateParamsSchema.safeParse({ from: '2026-03-01' })), 'to: from and to go together');
    assert.equal(firstIssue(aggregateParamsSchema.safeParse({ from: '2026-03-02', to: '2026-03-01' })), 'to: must not be before from');
    assert.equal(firstIssue(aggregateParamsSchema.safeParse({ from: '2000-01-01', to: '2026-01-01' })), 'to: the range may span at most 3660 days');
    assert.equal(firstIssue(aggregateParamsSchema.safeParse({ date: '2026-02-30' })), 'date: must be a date as YYYY-MM-DD');
    assert.equal(firstIssue(aggregateParamsSchema.safeParse({ rollups: ['weekly'] })), 'rollups.0: Invalid input: expected "daily_stats"');
    assert.match(firstIssue(aggregateParamsSchema.safeParse({ day: '2026-03-01' })) ?? '', /^: Unrecognized key: "day"/);
  });
});

describe('report params', () => {
  it('cover the seven days before the nominal date unless given', () => {
    // Due Sunday 2026-11-29 03:00: Sunday 22 to Saturday 28.
    assert.deepEqual(reportWindow(reportParamsSchema.parse({}), new Date('2026-11-29T03:00:00Z')), { from: '2026-11-22', to: '2026-11-28' });
    assert.deepEqual(reportWindow(reportParamsSchema.parse({ from: '2026-11-01', to: '2026-11-07' }), new Date()), { from: '2026-11-01', to: '2026-11-07' });
    assert.equal(firstIssue(reportParamsSchema.safeParse({ from: '2026-01-01', to: '2026-03-01' })), 'to: the range may span at most 31 days');
  });
});
