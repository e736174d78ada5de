import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shippedSchedulesFile } from '../../src/config';
import { runStartOptions } from '../../src/jobs/start';
import { parseCalendarField, toCalendarSpec } from '../../src/schedules/calendar';
import { loadSchedules, parseSchedules, scheduleOptions, ScheduleFileError } from '../../src/schedules/declarations';
import { nextState } from '../../src/schedules/sync';
import { shipped } from '../helpers/datasets';

const file = (schedules: string) => `schedules:\n${schedules}`;
const refused = (text: string) => {
  try {
    parseSchedules(text, 'test.yaml', shipped);
  } catch (err) {
    assert.ok(err instanceof ScheduleFileError, String(err));
    return err.message;
  }
  assert.fail('the file was accepted');
};

describe('schedule declarations', () => {
  it('the shipped file declares daily-stats, cleanup-expired, weekly-report, refresh-product-cache (paused) and monthly-invoicing', () => {
    const declared = loadSchedules(shippedSchedulesFile, shipped);
    assert.deepEqual(
      declared.map((d) => [d.id, d.kind, d.cron ?? d.calendar, d.timeZone, d.overlap, d.catchupWindow, d.jitter, d.paused]),
      [
        ['daily-stats', 'aggregate', '0 2 * * *', 'UTC', 'buffer_all', '1d', undefined, false],
        ['cleanup-expired', 'cleanup', '0 * * * *', 'UTC', 'skip', '30m', '5m', false],
        ['weekly-report', 'report', { dayOfWeek: 'SUNDAY', hour: 3, minute: 0 }, 'UTC', 'skip', '1d', undefined, false],
        ['refresh-product-cache', 'cache-refresh', '0 * * * *', 'UTC', 'skip', '30m', undefined, true],
        ['monthly-invoicing', 'invoicing', '0 3 1 * *', 'UTC', 'skip', '3d', undefined, false],
      ],
    );
  });

  it('fills in defaults and parses params with the kind schema', () => {
    const [d] = parseSchedules(file('  nightly:\n    cron: "@daily"\n    kind: aggregate\n'), 'test.yaml', shipped);
    assert.deepEqual(d, { id: 'nightly', cron: '@daily', timeZone: 'UTC', kind: 'aggregate', params: { rollups: ['daily_stats'] }, overlap: 'skip', catchupWindow: '1h', paused: false });
  });

  it('refuses a bad file naming the schedule and the field', () => {
    const cases: [string, RegExp][] = [
      [file('  a:\n    cron: "0 2 * * *"\n    kind: aggregate\n    params: {day: "2026-01-01"}\n'), /schedule "a": params: Unrecognized key: "day"/],
      [file('  a:\n    cron: "0 2 * * *"\n    kind: aggregate\n    params: {date: "2026-13-01"}\n'), /schedule "a": params\.date: must be a date/],
      [file('  a:\n    cron: "0 2 * * *"\n    kind: export\n    params: {dataset: nope}\n'), /schedule "a": params\.dataset: "nope" is not a declared dataset/],
      [file('  b:\n    cron: "0 2 * *"\n    kind: cleanup\n'), /schedule "b": cron: must be a cron expression/],
      [file('  c:\n    cron: "0 2 * * *"\n    calendar: {hour: 2}\n    kind: cleanup\n'), /schedule "c": cron: give either cron or calendar/],
      [file('  d:\n    calendar: {hour: 25}\n    kind: cleanup\n'), /schedule "d": calendar\.hour: "25" is not a value from 0 to 23/],
      [file('  e:\n    cron: "0 2 * * *"\n    timeZone: Mars/Olympus\n    kind: cleanup\n'), /schedule "e": timeZone: must be an IANA time zone/],
      [file('  f:\n    cron: "0 2 * * *"\n    kind: invoice\n'), /schedule "f": kind: Invalid option/],
      [file('  g:\n    cron: "0 2 * * *"\n    kind: cleanup\n    overlapPolicy: skip\n'), /schedule "g": declaration: Unrecognized key: "overlapPolicy"/],
      [file('  h:\n    cron: "0 2 * * *"\n    kind: cleanup\n    catchupWindow: 5s\n'), /schedule "h": catchupWindow: must be at least 10s/],
      [file('  "bad id!":\n    cron: "0 2 * * *"\n    kind: cleanup\n'), /schedules\.bad id!: /],
      ['schedule:\n  a: {}\n', /test\.yaml: file: Unrecognized key: "schedule"/],
      ['schedules: [', /test\.yaml: not valid YAML/],
    ];
    for (const [text, expected] of cases) assert.match(refused(text), expected);
  });

  it('names every bad schedule at once', () => {
    const message = refused(file('  a:\n    cron: "0 2 * * *"\n    kind: nope\n  b:\n    cron: "0 2 * * *"\n    kind: report\n    params: {from: "2026-01-01"}\n'));
    assert.match(message, /schedule "a": kind: .*; schedule "b": params\.to: from and to go together/);
  });
});

describe('calendar fields', () => {
  it('read numbers, names, ranges, steps and lists', () => {
    assert.deepEqual(parseCalendarField('hour', 3), { ranges: [{ start: 3, end: 3, step: 1 }] });
    assert.deepEqual(parseCalendarField('minute', '*/15'), { ranges: [{ start: 0, end: 59, step: 15 }] });
    assert.deepEqual(parseCalendarField('dayOfWeek', 'mon-fri'), { ranges: [{ start: 1, end: 5, step: 1 }] });
    assert.deepEqual(parseCalendarField('dayOfWeek', [7, 'Saturday']), { ranges: [{ start: 0, end: 0, step: 1 }, { start: 6, end: 6, step: 1 }] });
    assert.deepEqual(parseCalendarField('dayOfMonth', '1,15'), { ranges: [{ start: 1, end: 1, step: 1 }, { start: 15, end: 15, step: 1 }] });
    assert.deepEqual(parseCalendarField('month', 'JAN-JUN/2'), { ranges: [{ start: 1, end: 6, step: 2 }] });
    for (const [field, value] of [['hour', 24], ['minute', '5-1'], ['month', 'smarch'], ['dayOfMonth', 0], ['hour', '*-3'], ['second', '1/0']] as const) {
      assert.ok('error' in parseCalendarField(field, value), `${field}: ${value}`);
    }
  });

  it('become a Temporal calendar with names for months and weekdays', () => {
    assert.deepEqual(toCalendarSpec({ dayOfWeek: 'SUNDAY', hour: 3, month: '1-2' }, 'weekly'), {
      comment: 'weekly',
      hour: [{ start: 3, end: 3, step: 1 }],
      month: [{ start: 'JANUARY', end: 'FEBRUARY', step: 1 }],
      dayOfWeek: [{ start: 'SUNDAY', end: 'SUNDAY', step: 1 }],
    });
  });
});

describe('schedule options', () => {
  const [declared] = parseSchedules(file('  daily:\n    cron: "0 2 * * *"\n    kind: aggregate\n    jitter: 2m\n'), 'test.yaml', shipped);

  it('start runs exactly as POST /runs does, on the task queue, marked as Batchflow’s', () => {
    const options = scheduleOptions(declared!, 'tq-1');
    const run = runStartOptions('aggregate', { rollups: ['daily_stats'] });
    assert.deepEqual(options.action, { type: 'startWorkflow', workflowId: 'daily', taskQueue: 'tq-1', ...run });
    assert.deepEqual(options.memo, { managedBy: 'batchflow', taskQueue: 'tq-1' });
    assert.deepEqual(options.spec, { cronExpressions: ['0 2 * * * #0 2 * * *'], timezone: 'UTC', jitter: 120_000 });
    assert.deepEqual(options.policies, { overlap: 'SKIP', catchupWindow: 3_600_000 });
  });

  it('have a digest that changes with the declaration and only with it', () => {
    const digest = (d = declared!, tq = 'tq-1') => scheduleOptions(d, tq).digest;
    assert.equal(digest(), digest());
    assert.notEqual(digest({ ...declared!, cron: '0 3 * * *' }), digest());
    assert.notEqual(digest({ ...declared!, params: { rollups: ['daily_stats'], date: '2026-01-01' } }), digest());
    assert.notEqual(digest({ ...declared!, overlap: 'buffer_one' }), digest());
    assert.notEqual(digest({ ...declared!, paused: true }), digest());
    assert.notEqual(digest(declared, 'tq-2'), digest());
  });
});

describe('sync keeps a pause', () => {
  it('never unpauses; a declared pause pauses', () => {
    assert.deepEqual(nextState({ paused: true, note: 'incident 42' }, { paused: false }), { paused: true, note: 'incident 42' });
    assert.deepEqual(nextState({ paused: true, note: 'incident 42' }, { paused: true, note: 'declared' }), { paused: true, note: 'incident 42' });
    assert.deepEqual(nextState({ paused: false, note: '' }, { paused: true, note: 'until the migration' }), { paused: true, note: 'until the migration' });
    assert.deepEqual(nextState({ paused: false, note: 'old' }, { paused: false }), { paused: false, note: 'old' });
  });
});
