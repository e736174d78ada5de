import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { z } from 'zod';

/**
 * Normalisers: steps a column declares to turn what people type into the one form the column
 * stores, before validation. Each takes a string and returns a string, or a failure when the value
 * cannot be normalised at all (a phone number that is not one). A value a step does not recognise
 * passes through unchanged, and the column's validation then says what it expects.
 */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const TOKEN = /YYYY|MMM|MM|M|DD|D|HH|mm|ss|./g;
const TOKEN_PATTERN: Record<string, string> = {
  YYYY: '(?<Y>\\d{4})',
  MMM: '(?<N>[A-Za-z]{3})[a-z]*\\.?',
  MM: '(?<M>\\d{2})',
  M: '(?<M>\\d{1,2})',
  DD: '(?<D>\\d{2})',
  D: '(?<D>\\d{1,2})',
  HH: '(?<h>\\d{2})',
  mm: '(?<m>\\d{2})',
  ss: '(?<s>\\d{2})',
};

/** Date input formats: YYYY, MM/M, DD/D, MMM (Jan), HH, mm, ss, and separators / - . space : T. */
export const dateFormatSchema = z
  .string()
  .regex(/^(YYYY|MMM|MM|M|DD|D|HH|mm|ss|[/\-. :T,])+$/, 'must be a date format made of YYYY, MM, M, DD, D, MMM, HH, mm, ss and separators (/ - . space : T ,)')
  .refine((f) => f.includes('YYYY') && /M/.test(f.replace(/mm/g, '')) && f.includes('D'), 'must contain YYYY, a month (MM, M or MMM) and a day (DD or D)')
  .refine((f) => {
    const fields = (f.match(TOKEN) ?? []).filter((t) => t in TOKEN_PATTERN).map((t) => TOKEN_PATTERN[t]!.slice(3, 4));
    return new Set(fields).size === fields.length;
  }, 'must name each part (year, month, day, hour, minute, second) once');

const simpleNormalisers = ['trim', 'collapse_spaces', 'lower', 'upper', 'title', 'phone', 'decimal_comma', 'thousands', 'yes_no'] as const;
type SimpleNormaliser = (typeof simpleNormalisers)[number];

/** One step as declared: a name, or `{phone: REGION}`, or `{date: [formats]}`. */
export const normaliserSchema = z.union([
  z.enum(simpleNormalisers, { error: () => `must be one of ${simpleNormalisers.join(', ')}, {phone: REGION} or {date: [FORMAT, ...]}` }),
  z.strictObject({ phone: z.string().regex(/^[A-Z]{2}$/, 'must be a two-letter region code such as GB or US') }),
  z.strictObject({ date: z.array(dateFormatSchema).min(1).max(10) }),
]);
export type Normaliser = z.infer<typeof normaliserSchema>;

export type NormaliserName = SimpleNormaliser | 'date';
export const normaliserName = (n: Normaliser): NormaliserName => (typeof n === 'string' ? n : 'phone' in n ? 'phone' : 'date');

/** Why a value could not be normalised; validation then rejects it with this message. */
export interface NormaliseFailure {
  failure: string;
}
type Step = (s: string) => string | NormaliseFailure;

const titleCase = (s: string) => s.toLowerCase().replace(/(^|[\s\-'’])(\p{L})/gu, (_, sep: string, c: string) => sep + c.toUpperCase());

function phone(region?: string): Step {
  const failure = { failure: region ? `must be a phone number (national numbers are read as ${region})` : 'must be a phone number with its country code (+44 …)' };
  return (s) => {
    if (!/\d/.test(s)) return failure;
    const parsed = parsePhoneNumberFromString(s, region as CountryCode | undefined);
    return parsed?.isValid() ? parsed.number : failure;
  };
}

// Thousands grouped with commas (1,234,567.89) or spaces; a decimal point may follow.
const GROUPED = /^[+-]?\d{1,3}([, \u00a0\u202f]\d{3})+(\.\d+)?$/;
// European notation: dots, spaces or apostrophes group thousands, a comma marks the decimals (1.234,56).
const DECIMAL_COMMA = /^[+-]?(\d{1,3}([. \u00a0\u202f']\d{3})+|\d+)(,\d+)?$/;

const TRUE = new Set(['yes', 'y', 'true', 't', '1', 'on']);
const FALSE = new Set(['no', 'n', 'false', 'f', '0', 'off']);

/** A calendar date that exists (31/02 does not). */
const isCalendarDate = (y: number, m: number, d: number) => {
  const t = new Date(Date.UTC(y, m - 1, d));
  return y >= 1 && t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
};

/** A parser for one declared format: the ISO form of a value in that format, or undefined. */
export function dateFormatParser(format: string): (s: string) => string | undefined {
  const pattern = format.replace(TOKEN, (t) => TOKEN_PATTERN[t] ?? t.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
  const re = new RegExp(`^${pattern}$`);
  return (s) => {
    const g = re.exec(s)?.groups;
    if (!g) return undefined;
    const month = g.N !== undefined ? MONTHS.indexOf(g.N.toLowerCase()) + 1 : Number(g.M);
    const [y, d] = [Number(g.Y), Number(g.D)];
    if (!isCalendarDate(y, month, d)) return undefined;
    const date = `${g.Y}-${String(month).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
    if (g.h === undefined) return date;
    if (Number(g.h) > 23 || Number(g.m ?? 0) > 59 || Number(g.s ?? 0) > 59) return undefined;
    return `${date}T${g.h}:${g.m ?? '00'}:${g.s ?? '00'}`;
  };
}

function dates(formats: readonly string[]): Step {
  const parsers = formats.map(dateFormatParser);
  return (s) => {
    const t = s.trim();
    for (const parse of parsers) {
      const iso = parse(t);
      if (iso !== undefined) return iso;
    }
    return s;
  };
}

const STEPS: Record<SimpleNormaliser, Step> = {
  trim: (s) => s.trim(),
  collapse_spaces: (s) => s.trim().replace(/\s+/g, ' '),
  lower: (s) => s.toLowerCase(),
  upper: (s) => s.toUpperCase(),
  title: titleCase,
  phone: phone(),
  decimal_comma: (s) => {
    const t = s.trim();
    return DECIMAL_COMMA.test(t) ? t.replace(/[. \u00a0\u202f']/g, '').replace(',', '.') : s;
  },
  thousands: (s) => {
    const t = s.trim();
    return GROUPED.test(t) ? t.replace(/[, \u00a0\u202f]/g, '') : s;
  },
  yes_no: (s) => {
    const t = s.trim().toLowerCase();
    return TRUE.has(t) ? 'true' : FALSE.has(t) ? 'false' : s;
  },
};

const stepOf = (n: Normaliser): Step => (typeof n === 'string' ? STEPS[n] : 'phone' in n ? phone(n.phone) : dates(n.date));

/** The declared steps as one function, applied in order; undefined when there are none. */
export function compileNormalisers(steps: readonly Normaliser[] | undefined): ((s: string) => string | NormaliseFailure) | undefined {
  if (!steps?.length) return undefined;
  const fns = steps.map(stepOf);
  return (s) => {
    let v: string | NormaliseFailure = s;
    for (const fn of fns) {
      v = fn(v);
      if (typeof v !== 'string') return v;
    }
    return v;
  };
}
