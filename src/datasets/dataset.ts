import { z } from 'zod';

export type SqlType = 'text' | 'integer' | 'numeric' | 'date' | 'timestamptz' | 'boolean';

export interface ColumnSpec {
  sql: SqlType;
  /** Validates and normalises one value; receives undefined for a missing or blank value. */
  schema: z.ZodType;
  /**
   * The schema's output for a value it plainly accepts, without running zod (an import validates
   * millions of values); UNDECIDED otherwise, and then the schema decides and words any error.
   */
  quick?: (value: unknown) => unknown;
  required: boolean;
  /** Other source header names that map to this column (compared after normalising). */
  aliases?: readonly string[];
  /** A credential: previews, samples and reports of stored rows show REDACTED instead. */
  secret?: boolean;
  description: string;
}

export interface DatasetSpec<C extends string = string> {
  name: string;
  table: string;
  description: string;
  /** Conflict target for upserts and the identity used for duplicate detection. */
  key: readonly NoInfer<C>[];
  /** Surrogate key used for keyset pagination. */
  idColumn: string;
  columns: Record<C, ColumnSpec>;
  /** Columns the database maintains (id, timestamps): filters may use them, imports and updates may not. */
  system: Record<string, SqlType>;
  /** The flow that alone writes this dataset (invoices): imports, bulk updates and cleanups refuse it. */
  writtenBy?: string;
}

export type Dataset = ReturnType<typeof defineDataset<string>>;

export const UNDECIDED: unique symbol = Symbol('undecided');

// The patterns zod's email and ISO date checks use (z.iso.date's by default), so a quick accept never disagrees with them.
const emailPattern = z.regexes.email;
const datePattern = z.regexes.date;

/** A quick check for a column whose missing value is `missing` (UNDECIDED when it is required). */
const quickly =
  (missing: unknown, accept: (s: string) => unknown) =>
  (v: unknown): unknown =>
    typeof v === 'string' ? accept(v) : v === undefined ? missing : UNDECIDED;

// Values the database would refuse, checked here so that they are row errors like any other: a
// refusal in the database fails the whole run.
const INT4_MIN = -2_147_483_648;
const INT4_MAX = 2_147_483_647;
// Postgres has no year 0 (the ISO patterns allow it).
const fromYearOne = (s: string) => !s.startsWith('0000');
const YEAR_ZERO = 'must be in year 1 or later';

const required = (what: string) => ({
  error: (issue: { input: unknown }) => (issue.input === undefined ? 'required' : `must be ${what}`),
});

/** Column builders: each yields the SQL type, the zod schema and whether a value is required. */
export const col = {
  text(opts: { required?: boolean; max?: number; secret?: boolean; description: string; aliases?: string[] }): ColumnSpec {
    const max = opts.max ?? 1000;
    const base = z.string(required('text')).trim().min(1, 'must not be blank').max(max, `must be at most ${max} characters`);
    const quick = quickly(opts.required ? UNDECIDED : undefined, (s) => {
      const t = s.trim();
      return t.length >= 1 && t.length <= max ? t : UNDECIDED;
    });
    return { sql: 'text', schema: opts.required ? base : base.optional(), quick, required: !!opts.required, secret: opts.secret, description: opts.description, aliases: opts.aliases };
  },
  /** Required unless `required: false` (then a blank value is stored as null). */
  email(opts: { required?: boolean; description: string; aliases?: string[] }): ColumnSpec {
    const isRequired = opts.required ?? true;
    const base = z.string(required('text')).trim().toLowerCase().pipe(z.email({ pattern: emailPattern, error: 'must be a valid email address' }));
    const quick = quickly(isRequired ? UNDECIDED : undefined, (s) => {
      const t = s.trim().toLowerCase();
      return emailPattern.test(t) ? t : UNDECIDED;
    });
    return { sql: 'text', schema: isRequired ? base : base.optional(), quick, required: isRequired, description: opts.description, aliases: opts.aliases };
  },
  /** An ISO 4217 currency code, stored upper-case. */
  currency(opts: { default?: string; description: string; aliases?: string[] }): ColumnSpec {
    const code = z.string(required('a currency code')).trim().toUpperCase().regex(/^[A-Z]{3}$/, 'must be a three-letter currency code such as EUR');
    const schema = opts.default === undefined ? code : code.optional().transform((v) => v ?? opts.default);
    return { sql: 'text', schema, required: opts.default === undefined, description: opts.description, aliases: opts.aliases };
  },
  /**
   * An exact decimal (quantities, prices), kept as its decimal text so that no binary float ever
   * rounds it: `scale` digits after the point at most, `integerDigits` before it (numeric(p, s)).
   */
  decimal(opts: { scale: number; integerDigits: number; required?: boolean; description: string; aliases?: string[] }): ColumnSpec {
    const pattern = new RegExp(`^(\\d{1,${opts.integerDigits}})(?:\\.(\\d{1,${opts.scale}}))?$`);
    const schema = z.preprocess(
      (v) => (typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v.trim() : v),
      z.string({ error: (i) => (i.input === undefined ? 'required' : 'must be a number') }).refine(
        (s) => pattern.test(s),
        `must be a number of at most ${opts.integerDigits} digits and ${opts.scale} decimals, 0 or more`,
      ),
    );
    return { sql: 'numeric', schema: opts.required ? schema : schema.optional(), required: !!opts.required, description: opts.description, aliases: opts.aliases };
  },
  enumOf<const V extends readonly [string, ...string[]]>(values: V, opts: { default?: V[number]; description: string; aliases?: string[] }): ColumnSpec {
    const base = z.preprocess(
      (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
      z.enum(values, { error: (i) => (i.input === undefined ? 'required' : `must be one of ${values.join(', ')}`) }),
    );
    const schema = opts.default === undefined ? base : base.optional().transform((v) => v ?? opts.default);
    const allowed = new Set<string>(values);
    const quick = quickly(opts.default ?? UNDECIDED, (s) => {
      const t = s.trim().toLowerCase();
      return allowed.has(t) ? t : UNDECIDED;
    });
    return { sql: 'text', schema, quick, required: opts.default === undefined, description: opts.description, aliases: opts.aliases };
  },
  date(opts: { required?: boolean; description: string; aliases?: string[] }): ColumnSpec {
    const base = z.preprocess(
      (v) => (typeof v === 'string' ? v.trim() : v),
      z.iso.date({ error: (i) => (i.input === undefined ? 'required' : 'must be a date as YYYY-MM-DD') }).refine(fromYearOne, YEAR_ZERO),
    );
    const quick = quickly(opts.required ? UNDECIDED : undefined, (s) => {
      const t = s.trim();
      return datePattern.test(t) && fromYearOne(t) ? t : UNDECIDED;
    });
    return { sql: 'date', schema: opts.required ? base : base.optional(), quick, required: !!opts.required, description: opts.description, aliases: opts.aliases };
  },
  timestamp(opts: { required?: boolean; description: string; aliases?: string[] }): ColumnSpec {
    const base = z.preprocess(
      (v) => (typeof v === 'string' ? v.trim() : v),
      z.iso
        .datetime({ offset: true, local: true, error: (i) => (i.input === undefined ? 'required' : 'must be a timestamp as YYYY-MM-DDTHH:MM:SS[Z|±HH:MM]') })
        .refine(fromYearOne, YEAR_ZERO),
    );
    return { sql: 'timestamptz', schema: opts.required ? base : base.optional(), required: !!opts.required, description: opts.description, aliases: opts.aliases };
  },
  /** `max`: the largest value the column's SQL type holds (numeric(12, 2): 9999999999.99); integers are bounded by their type. */
  number(opts: { sql: 'integer' | 'numeric'; required?: boolean; min?: number; max?: number; positive?: boolean; default?: number; description: string; aliases?: string[] }): ColumnSpec {
    let num = z.number({ error: (i) => (i.input === undefined ? 'required' : 'must be a number') });
    if (opts.sql === 'integer') num = num.int('must be a whole number').min(INT4_MIN, `must be at least ${INT4_MIN}`).max(INT4_MAX, `must be at most ${INT4_MAX}`);
    if (opts.max !== undefined) num = num.max(opts.max, `must be at most ${opts.max}`);
    if (opts.positive) num = num.positive('must be greater than 0');
    if (opts.min !== undefined) num = num.min(opts.min, `must be at least ${opts.min}`);
    // CSV gives strings: accept plain decimal notation only, so "1e3" or "0x10" are rejected.
    const parsed = z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), num);
    const schema = opts.default !== undefined ? parsed.optional().transform((v) => v ?? opts.default) : opts.required ? parsed : parsed.optional();
    return { sql: opts.sql, schema, required: !!opts.required && opts.default === undefined, description: opts.description, aliases: opts.aliases };
  },
};

/** What a secret column's value reads as wherever stored rows are shown. */
export const REDACTED = '[redacted]';

const normaliseHeader = (h: string) => h.trim().toLowerCase().replace(/[\s\-.]+/g, '_');

export function defineDataset<C extends string>(spec: DatasetSpec<C>) {
  const columnNames = Object.keys(spec.columns) as C[];
  const secrets = columnNames.filter((c) => spec.columns[c].secret);
  const byHeader = new Map<string, C>();
  for (const name of columnNames) {
    byHeader.set(normaliseHeader(name), name);
    for (const alias of spec.columns[name].aliases ?? []) byHeader.set(normaliseHeader(alias), name);
  }
  return {
    ...spec,
    columnNames,
    /** The column a source field feeds, by explicit mapping first, then by name or alias. */
    columnFor(sourceField: string, mapping?: Record<string, string>): C | undefined {
      const mapped = mapping?.[sourceField];
      if (mapped !== undefined) return columnNames.includes(mapped as C) ? (mapped as C) : undefined;
      return byHeader.get(normaliseHeader(sourceField));
    },
    isColumn(name: string): boolean {
      return columnNames.includes(name as C);
    },
    /** The SQL type of a column filters may use (declared or system), or undefined. */
    filterType(name: string): SqlType | undefined {
      return Object.hasOwn(spec.columns, name) ? spec.columns[name as C].sql : Object.hasOwn(spec.system, name) ? spec.system[name] : undefined;
    },
    filterableColumns: [...columnNames, ...Object.keys(spec.system)],
    /** A stored row as it may be shown (a preview, a report): secret columns' values replaced. */
    redact<R extends Record<string, unknown>>(row: R): R {
      const shown = secrets.filter((c) => row[c] != null);
      return shown.length === 0 ? row : { ...row, ...Object.fromEntries(shown.map((c) => [c, REDACTED])) };
    },
  };
}
