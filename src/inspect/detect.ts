import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import { dateFormatParser, normaliserSchema, type Normaliser } from '../datasets/normalise';

/**
 * Type detection for one column of sampled values: which type the values are, how sure (the share
 * of non-blank values that fit it), in which formats, and what looks wrong. Pure: no I/O.
 */

export const detectedTypes = ['integer', 'decimal', 'boolean', 'date', 'timestamp', 'email', 'phone', 'url', 'enum', 'text', 'empty'] as const;
export type DetectedType = (typeof detectedTypes)[number];

export const columnProfileSchema = z.object({
  header: z.string(),
  type: z.enum(detectedTypes),
  /** Share of non-blank sampled values that fit the type, 0 to 1. */
  confidence: z.number(),
  /** The values' format: a date format, "decimal comma", "thousands separators", a phone style, … */
  formats: z.array(z.object({ format: z.string(), count: z.number().int() })),
  /** Share of sampled rows where the value is blank or null. */
  nullRate: z.number(),
  distinct: z.number().int(),
  examples: z.array(z.string()),
  /** The values of an enum-like column, most frequent first. */
  values: z.array(z.string()).optional(),
  problems: z.array(z.string()),
  /** Normalisers that would bring the values to the type's stored form. */
  normalise: z.array(normaliserSchema),
});
export type ColumnProfile = z.infer<typeof columnProfileSchema>;

const NULL_LIKE = new Set(['null', 'nil', 'none', 'n/a', 'na', '-', '?', '#n/a']);

const BOOLEAN_STYLES: [RegExp, string][] = [
  [/^(true|false)$/i, 'true/false'],
  [/^(yes|no)$/i, 'yes/no'],
  [/^(y|n)$/i, 'y/n'],
  [/^(t|f)$/i, 't/f'],
  [/^(on|off)$/i, 'on/off'],
  [/^[01]$/, '1/0'],
];

const INTEGER_STYLES: [RegExp, string][] = [
  [/^[+-]?\d+$/, 'plain'],
  [/^[+-]?\d{1,3}(,\d{3})+$/, 'thousands separators'],
  [/^[+-]?\d{1,3}([ \u00a0\u202f']\d{3})+$/, 'thousands separators'],
];
const DECIMAL_STYLES: [RegExp, string][] = [
  [/^[+-]?\d*\.\d+$/, 'plain'],
  [/^[+-]?\d{1,3}(,\d{3})+\.\d+$/, 'thousands separators'],
  [/^[+-]?\d+,\d{1,2}$|^[+-]?\d+,\d{4,}$/, 'decimal comma'],
  [/^[+-]?\d{1,3}([. \u00a0\u202f']\d{3})+,\d+$/, 'decimal comma'],
];
// "1,234" is a thousand and some, or one and a bit with a decimal comma: the column decides.
const AMBIGUOUS_COMMA = /^[+-]?\d{1,3},\d{3}$/;

/** The date formats detection tries; each parses what the date normaliser with that format accepts. */
const DATE_FORMATS = ['YYYY-MM-DD', 'D/M/YYYY', 'M/D/YYYY', 'D-M-YYYY', 'D.M.YYYY', 'YYYY/M/D', 'D MMM YYYY', 'MMM D, YYYY'];
const TIMESTAMP_FORMATS = ['YYYY-MM-DD HH:mm:ss', 'YYYY-MM-DD HH:mm', 'D/M/YYYY HH:mm:ss', 'D/M/YYYY HH:mm', 'M/D/YYYY HH:mm', 'D.M.YYYY HH:mm'];
const datesParsers = DATE_FORMATS.map((f) => [f, dateFormatParser(f)] as const);
const timestampParsers = TIMESTAMP_FORMATS.map((f) => [f, dateFormatParser(f)] as const);
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i;
const EMAIL = z.regexes.email;
const URL_LIKE = /^https?:\/\/[^\s/$.?#].[^\s]*$/i;
const PHONE_SHAPE = /^\+?[\d\s().\-/]{6,24}$/;

/** Values that do not fit, as a problem: how many, and a few of them. */
const misfits = (what: string, values: readonly string[]) =>
  `${values.length} value${values.length === 1 ? ' does' : 's do'} not look like ${what}: ${[...new Set(values)].slice(0, 3).map((v) => JSON.stringify(v)).join(', ')}`;

const countBy = <T>(items: readonly T[]) => {
  const counts = new Map<T, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
};
const formatsOf = (tags: readonly string[]) => countBy(tags).map(([format, count]) => ({ format, count }));

/** For each value the first style it has, or undefined. */
const styleOf = (styles: readonly [RegExp, string][], v: string) => styles.find(([re]) => re.test(v))?.[1];

/** The phone style a value is written in, for "phones in several styles". */
function phoneStyle(v: string): string {
  if (v.startsWith('+')) return /\s/.test(v) ? '+CC with spaces' : /[-.]/.test(v) ? '+CC with dashes' : '+CC digits';
  if (v.startsWith('(')) return '(area) number';
  if (/^\d+$/.test(v)) return 'digits only';
  return /\s/.test(v) ? 'national with spaces' : 'national with dashes';
}

/** Values far outside the middle half (3 interquartile ranges): likely typos or placeholders. */
function outliers(values: readonly { raw: string; n: number }[]): string[] {
  if (values.length < 8) return [];
  const sorted = values.map((v) => v.n).sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.floor(p * (sorted.length - 1))]!;
  const [q1, q3] = [q(0.25), q(0.75)];
  const iqr = q3 - q1;
  if (iqr === 0) return [];
  return [...new Set(values.filter((v) => v.n < q1 - 3 * iqr || v.n > q3 + 3 * iqr).map((v) => v.raw))];
}

interface Candidate {
  type: DetectedType;
  fits: number;
  formats: { format: string; count: number }[];
  problems: string[];
  normalise: Normaliser[];
  values?: string[];
}

function detectBoolean(values: readonly string[]): Candidate {
  const tags = values.map((v) => styleOf(BOOLEAN_STYLES, v));
  const styles = formatsOf(tags.filter((t): t is string => !!t));
  const problems = styles.length > 1 ? [`booleans written ${styles.length} ways: ${styles.map((s) => s.format).join(', ')}`] : [];
  const onlyDigits = styles.length === 1 && styles[0]!.format === '1/0';
  if (onlyDigits) problems.push('only 0 and 1: a boolean, or a small integer');
  const plain = styles.every((s) => s.format === 'true/false');
  // 0/1 alone could as well be counts: let a numeric reading win a tie.
  return { type: 'boolean', fits: tags.filter(Boolean).length * (onlyDigits ? 0.95 : 1), formats: styles, problems, normalise: plain ? [] : ['yes_no'] };
}

function detectNumber(values: readonly string[]): Candidate[] {
  const decimalComma = values.some((v) => styleOf(DECIMAL_STYLES, v) === 'decimal comma');
  const readAs = (v: string): { style: string; integer: boolean; n: number } | undefined => {
    if (AMBIGUOUS_COMMA.test(v) && decimalComma) return { style: 'decimal comma', integer: false, n: Number(v.replace(',', '.')) };
    const int = styleOf(INTEGER_STYLES, v);
    if (int) return { style: int, integer: true, n: Number(v.replace(/[^\d+-]/g, '')) };
    const dec = styleOf(DECIMAL_STYLES, v);
    if (!dec) return undefined;
    const n = dec === 'decimal comma' ? Number(v.replace(/[. \u00a0\u202f']/g, '').replace(',', '.')) : Number(v.replace(/[, \u00a0\u202f']/g, ''));
    return { style: dec, integer: false, n };
  };
  const read = values.map((v) => ({ raw: v, r: readAs(v) }));
  const numbers = read.filter((x) => x.r).map((x) => ({ raw: x.raw, n: x.r!.n, style: x.r!.style, integer: x.r!.integer }));
  const formats = formatsOf(numbers.map((x) => x.style));
  const styles = new Set(numbers.map((x) => x.style));
  const normalise: Normaliser[] = [...(styles.has('thousands separators') ? (['thousands'] as const) : []), ...(styles.has('decimal comma') ? (['decimal_comma'] as const) : [])];
  const problems: string[] = [];
  if (styles.has('decimal comma') && (styles.has('thousands separators') || numbers.some((x) => x.style === 'plain' && !x.integer))) problems.push('mixed decimal separators: some values use a comma, others a point');
  const far = outliers(numbers);
  if (far.length > 0) problems.push(`${far.length} outlier${far.length === 1 ? '' : 's'} far from the other values: ${far.slice(0, 5).join(', ')}`);
  const zeros = numbers.filter((x) => /^[+-]?0\d/.test(x.raw)).length;
  if (zeros > 0) problems.push(`${zeros} value${zeros === 1 ? ' has' : 's have'} leading zeros, which a number drops: a code or identifier is text`);
  const integers = numbers.filter((x) => x.integer).length;
  return [
    { type: 'integer', fits: integers, formats, problems, normalise },
    { type: 'decimal', fits: numbers.length, formats, problems, normalise },
  ];
}

function detectDates(values: readonly string[], formats: readonly (readonly [string, (s: string) => string | undefined])[], type: 'date' | 'timestamp'): Candidate {
  const matches = values.map((v) => formats.filter(([, parse]) => parse(v) !== undefined).map(([f]) => f));
  if (type === 'timestamp') for (const [i, v] of values.entries()) if (ISO_TIMESTAMP.test(v)) matches[i]!.push('ISO 8601');
  // The fewest formats that read every value: most values first, and among formats that read
  // the same values (03/04/2024), the one other values prove (a day above 12).
  const chosen: string[] = [];
  let open = matches.map((m, i) => i).filter((i) => matches[i]!.length > 0);
  while (open.length > 0) {
    const score = new Map<string, number>();
    for (const i of open) for (const f of matches[i]!) score.set(f, (score.get(f) ?? 0) + 1);
    const proven = (f: string) => open.filter((i) => matches[i]!.length === 1 && matches[i]![0] === f).length;
    const best = [...score].sort((a, b) => b[1] - a[1] || proven(b[0]) - proven(a[0]))[0]![0];
    chosen.push(best);
    open = open.filter((i) => !matches[i]!.includes(best));
  }
  const tag = (i: number) => chosen.find((f) => matches[i]!.includes(f));
  const fitting = values.map((_, i) => tag(i)).filter((t): t is string => !!t);
  const counted = formatsOf(fitting);
  const problems: string[] = [];
  if (counted.length > 1) problems.push(`mixed ${type} formats: ${counted.map((f) => `${f.format} (${f.count})`).join(', ')}`);
  const ambiguous = (a: string, b: string) => chosen.includes(a) && matches.every((m) => !m.includes(a) || m.includes(b));
  if (ambiguous('D/M/YYYY', 'M/D/YYYY')) problems.push('no day is above 12: D/M/YYYY assumed, it may be M/D/YYYY');
  const years = values.map((v, i) => ({ v, t: tag(i) })).filter((x) => x.t && x.t !== 'ISO 8601').map((x) => ({ v: x.v, y: Number(/\d{4}/.exec(x.v)?.[0]) }));
  const odd = [...new Set(years.filter((x) => x.y < 1900 || x.y > 2100).map((x) => x.v))];
  if (odd.length > 0) problems.push(`${odd.length} ${type}${odd.length === 1 ? '' : 's'} far from the others: ${odd.slice(0, 5).join(', ')}`);
  const foreign = chosen.filter((f) => f !== 'YYYY-MM-DD' && f !== 'ISO 8601');
  return { type, fits: fitting.length, formats: counted, problems, normalise: foreign.length > 0 ? [{ date: foreign }] : [] };
}

function detectPhones(values: readonly string[], region?: string): Candidate {
  // Written like a phone number: + or ( or a leading 0, or separators; plain digits are numbers.
  const shaped = values.filter((v) => {
    const digits = v.replace(/\D/g, '').length;
    return PHONE_SHAPE.test(v) && digits >= 7 && digits <= 15 && /^[+(0]|[\s().\-/]/.test(v);
  });
  const valid = shaped.filter((v) => !!parsePhoneNumberFromString(v, region as CountryCode | undefined)?.isValid());
  // Without a region a national number cannot be checked: it counts by its shape alone.
  const unchecked = region ? [] : shaped.filter((v) => !v.startsWith('+'));
  const phones = [...valid, ...unchecked];
  const formats = formatsOf(phones.map(phoneStyle));
  const problems = formats.length > 1 ? [`phone numbers in ${formats.length} styles: ${formats.map((f) => `${f.format} (${f.count})`).join(', ')}`] : [];
  if (unchecked.length > 0) problems.push(`${unchecked.length} national number${unchecked.length === 1 ? '' : 's'} without a country code: pass region to check them`);
  const normalise: Normaliser[] = region ? [{ phone: region }] : unchecked.length === 0 ? ['phone'] : [];
  return { type: 'phone', fits: phones.length, formats, problems, normalise };
}

function detectEnum(values: readonly string[]): Candidate {
  const counted = countBy(values);
  const problems: string[] = [];
  const folded = countBy(values.map((v) => v.trim().toLowerCase()));
  if (folded.length < counted.length) problems.push(`values differ only in case or spaces: ${counted.slice(0, 6).map(([v]) => JSON.stringify(v)).join(', ')}`);
  const fits = folded.length <= 20 && folded.length * 3 <= values.length ? values.length : 0;
  return { type: 'enum', fits, formats: [], problems, normalise: [], values: counted.map(([v]) => v) };
}

function detectText(raw: readonly string[]): Candidate {
  const padded = raw.filter((v) => v !== v.trim()).length;
  const spaced = raw.filter((v) => /\s{2,}/.test(v.trim())).length;
  const problems = [
    ...(padded > 0 ? [`${padded} value${padded === 1 ? ' has' : 's have'} leading or trailing spaces`] : []),
    ...(spaced > 0 ? [`${spaced} value${spaced === 1 ? ' has' : 's have'} runs of spaces`] : []),
  ];
  return { type: 'text', fits: raw.length, formats: [], problems, normalise: spaced > 0 ? ['collapse_spaces'] : [] };
}

// In order of preference when several fit equally: the narrower type first.
const ORDER: DetectedType[] = ['boolean', 'date', 'timestamp', 'email', 'url', 'phone', 'integer', 'decimal', 'enum', 'text'];
/** A type must fit this share of values to be chosen; below it the values are text. */
const ENOUGH = 0.8;

/** Detects one column's type from its sampled values (undefined and null are blank). */
export function profileColumn(header: string, sample: readonly unknown[], opts: { region?: string } = {}): ColumnProfile {
  const raw = sample.map((v) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v as number | boolean)));
  const present = raw.filter((v) => v.trim() !== '');
  const nullLike = present.filter((v) => NULL_LIKE.has(v.trim().toLowerCase()));
  const values = present.map((v) => v.trim()).filter((v) => !NULL_LIKE.has(v.toLowerCase()));
  const blanks = raw.length - values.length;
  const base = { header, nullRate: raw.length === 0 ? 0 : round(blanks / raw.length), distinct: new Set(values).size, examples: [...new Set(values)].slice(0, 5) };
  const nullProblems = nullLike.length > 0 ? [`${nullLike.length} value${nullLike.length === 1 ? ' is' : 's are'} null written as text (${[...new Set(nullLike)].slice(0, 3).join(', ')}): counted as blank`] : [];
  if (values.length === 0) return { ...base, type: 'empty', confidence: 1, formats: [], problems: nullProblems, normalise: [] };

  const candidates: Candidate[] = [
    detectBoolean(values),
    detectDates(values, datesParsers, 'date'),
    detectDates(values, timestampParsers, 'timestamp'),
    { type: 'email', fits: values.filter((v) => EMAIL.test(v.toLowerCase())).length, formats: [], problems: [], normalise: [] },
    { type: 'url', fits: values.filter((v) => URL_LIKE.test(v)).length, formats: [], problems: [], normalise: [] },
    detectPhones(values, opts.region),
    ...detectNumber(values),
    detectEnum(values),
  ];
  const best = candidates.filter((c) => c.fits / values.length >= ENOUGH).sort((a, b) => b.fits - a.fits || ORDER.indexOf(a.type) - ORDER.indexOf(b.type))[0];
  const chosen = best ?? detectText(present);
  const confidence = round(chosen.fits / values.length);
  const problems = [...nullProblems, ...chosen.problems];
  if (chosen.type !== 'text' && chosen.type !== 'enum' && chosen.fits < values.length) {
    problems.push(misfits(chosen.type === 'integer' ? 'an integer' : `a ${chosen.type}`, values.filter((v) => !detectOne(chosen.type, v, opts.region))));
  }
  return { ...base, type: chosen.type, confidence, formats: chosen.formats, problems, normalise: chosen.normalise, ...(chosen.values && { values: chosen.values.slice(0, 20) }) };
}

/** Whether one value fits a type on its own (for naming the values that do not). */
function detectOne(type: DetectedType, v: string, region?: string): boolean {
  const one = [v];
  switch (type) {
    case 'boolean':
      return detectBoolean(one).fits > 0;
    case 'date':
      return detectDates(one, datesParsers, 'date').fits > 0;
    case 'timestamp':
      return detectDates(one, timestampParsers, 'timestamp').fits > 0;
    case 'email':
      return EMAIL.test(v.toLowerCase());
    case 'url':
      return URL_LIKE.test(v);
    case 'phone':
      return detectPhones(one, region).fits > 0;
    case 'integer':
      return detectNumber(one)[0]!.fits > 0;
    case 'decimal':
      return detectNumber(one)[1]!.fits > 0;
    default:
      return true;
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;
