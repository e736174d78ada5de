import { z } from 'zod';

/**
 * Calendar dates as 'YYYY-MM-DD' strings, and the few conversions between dates and instants that
 * roll-ups, reports and backfills need. Pure: workflows use them too.
 */

export const isoDateSchema = z.iso.date('must be a date as YYYY-MM-DD').refine((d) => !d.startsWith('0000'), 'must be in year 1 or later');

/** Dates from `from` to `to`, both included. */
export interface DateRange {
  from: string;
  to: string;
}

const DAY_MS = 86_400_000;
const utcMs = (date: string) => Date.parse(`${date}T00:00:00Z`);

export const addDays = (date: string, days: number): string => new Date(utcMs(date) + days * DAY_MS).toISOString().slice(0, 10);

/** How many dates from `from` to `to`, both included (0 when `to` is before `from`). */
export const dayCount = (from: string, to: string): number => Math.max(0, Math.round((utcMs(to) - utcMs(from)) / DAY_MS) + 1);

/** The dates from `from` to `to`, both included. */
export function datesBetween(from: string, to: string): string[] {
  return Array.from({ length: dayCount(from, to) }, (_, i) => addDays(from, i));
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const partsIn = (instant: Date, timeZone: string) => {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(timeZone, format);
  }
  return Object.fromEntries(format.formatToParts(instant).map((p) => [p.type, p.value]));
};

/** Whether Intl knows the IANA time zone name. */
export function isTimeZone(name: string): boolean {
  try {
    partsIn(new Date(0), name);
    return true;
  } catch {
    return false;
  }
}

/** The calendar date an instant falls on in a time zone. */
export function dateIn(instant: Date, timeZone: string): string {
  const p = partsIn(instant, timeZone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** How far a time zone's wall clock is ahead of UTC at an instant, in ms. */
function offsetMs(instant: Date, timeZone: string): number {
  const p = partsIn(instant, timeZone);
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return wall - Math.floor(instant.getTime() / 1000) * 1000;
}

/** The instant a date begins in a time zone (its first second, where a DST change skips midnight). */
export function startOfDay(date: string, timeZone: string): Date {
  const guess = utcMs(date);
  let instant = guess - offsetMs(new Date(guess), timeZone);
  // Once more with the offset at the first guess: right across a DST change.
  instant = guess - offsetMs(new Date(instant), timeZone);
  return new Date(dateIn(new Date(instant), timeZone) === date ? instant : instant + 3_600_000);
}

/** The day before the date an instant falls on: what a run scheduled at that instant reports on. */
export const previousDay = (instant: Date, timeZone: string): string => addDays(dateIn(instant, timeZone), -1);

/** Checks an optional from/to pair of params: both or neither, in order, at most `maxDays` dates. */
export function checkDateRange(ctx: z.RefinementCtx, p: { from?: string; to?: string }, maxDays: number): void {
  if ((p.from === undefined) !== (p.to === undefined)) ctx.addIssue({ code: 'custom', path: [p.from === undefined ? 'from' : 'to'], message: 'from and to go together' });
  if (p.from === undefined || p.to === undefined) return;
  if (p.to < p.from) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must not be before from' });
  else if (dayCount(p.from, p.to) > maxDays) ctx.addIssue({ code: 'custom', path: ['to'], message: `the range may span at most ${maxDays} days` });
}
