import { DAYS_OF_WEEK, MONTHS, type CalendarSpec, type DayOfWeek, type Month, type Range } from '@temporalio/client';

/**
 * Calendar fields as a schedules file writes them, cron-style: a number, a name (months and days of
 * the week, full or three letters), `*`, `*\/n`, `a-b`, `a-b/n`, or a list of those (a YAML list or
 * commas). They become Temporal's CalendarSpec ranges.
 */
export const calendarFields = ['second', 'minute', 'hour', 'dayOfMonth', 'month', 'dayOfWeek'] as const;
export type CalendarField = (typeof calendarFields)[number];
export type CalendarValue = number | string | (number | string)[];
export type CalendarDeclaration = Partial<Record<CalendarField, CalendarValue>>;

const BOUNDS: Record<CalendarField, [number, number]> = {
  second: [0, 59],
  minute: [0, 59],
  hour: [0, 23],
  dayOfMonth: [1, 31],
  month: [1, 12],
  dayOfWeek: [0, 6],
};

/** A month or weekday name (full or its first three letters, any case) as its number. */
function byName(field: CalendarField, name: string): number | undefined {
  const names: readonly string[] = field === 'month' ? MONTHS : field === 'dayOfWeek' ? DAYS_OF_WEEK : [];
  const upper = name.toUpperCase();
  const i = names.findIndex((n) => n === upper || (upper.length === 3 && n.startsWith(upper)));
  if (i < 0) return undefined;
  return field === 'month' ? i + 1 : i;
}

const ITEM = /^(\*|[A-Za-z0-9]+)(?:-([A-Za-z0-9]+))?(?:\/(\d+))?$/;

/** One field's ranges, or why it is wrong. */
export function parseCalendarField(field: CalendarField, value: CalendarValue): { ranges: Range<number>[] } | { error: string } {
  const [min, max] = BOUNDS[field];
  const items = (Array.isArray(value) ? value : [value]).flatMap((v): (string | number)[] => (typeof v === 'string' ? v.split(',') : [v]));
  if (items.length === 0) return { error: 'must not be empty' };
  const ranges: Range<number>[] = [];
  for (const item of items) {
    const text = String(item).trim();
    const unit = (s: string): number | undefined => {
      // Cron's 7 is Sunday too.
      const n = /^\d+$/.test(s) ? (field === 'dayOfWeek' && s === '7' ? 0 : Number(s)) : byName(field, s);
      return n !== undefined && n >= min && n <= max ? n : undefined;
    };
    const m = ITEM.exec(text);
    const start = m && (m[1] === '*' ? min : unit(m[1]!));
    const end = m && (m[1] === '*' ? max : m[2] !== undefined ? unit(m[2]) : m[3] !== undefined ? max : start);
    const step = m?.[3] !== undefined ? Number(m[3]) : 1;
    if (!m || (m[1] === '*' && m[2] !== undefined) || start == null || end == null || end < start || step < 1) {
      return { error: `"${text}" is not a value from ${min} to ${max}${field === 'month' || field === 'dayOfWeek' ? ' or a name' : ''}, a range a-b, */n or a-b/n` };
    }
    ranges.push({ start, end, step });
  }
  return { ranges };
}

const unitOf = (field: CalendarField, n: number): number | Month | DayOfWeek => (field === 'month' ? MONTHS[n - 1]! : field === 'dayOfWeek' ? DAYS_OF_WEEK[n]! : n);

/**
 * The declared fields as one Temporal CalendarSpec. A field left out is `*` for the date fields
 * and 0 for the time fields, as Temporal reads them: `{hour: 2}` is every day at 02:00:00.
 */
export function toCalendarSpec(declared: CalendarDeclaration, comment: string): CalendarSpec {
  const spec: Record<string, unknown> = { comment };
  for (const field of calendarFields) {
    const value = declared[field];
    if (value === undefined) continue;
    const parsed = parseCalendarField(field, value);
    if ('error' in parsed) throw new Error(`calendar.${field}: ${parsed.error}`);
    spec[field] = parsed.ranges.map((r) => ({ start: unitOf(field, r.start), end: unitOf(field, r.end), step: r.step }));
  }
  return spec;
}

/** The declared fields as one line: what a person wrote, for listings. */
export const describeCalendar = (declared: CalendarDeclaration): string =>
  calendarFields
    .filter((f) => declared[f] !== undefined)
    .map((f) => `${f}=${[declared[f]].flat().join(',')}`)
    .join(' ');
