import { z } from 'zod';
import type { ColumnDeclaration, DatasetDeclaration, SystemType } from './declaration';
import { compileNormalisers, type Normaliser } from './normalise';

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
  /** How the column was declared: what a YAML file says, and what rebuilds it in another thread. */
  declaration: ColumnDeclaration;
}

export interface DatasetSpec<C extends string = string> {
  name: string;
  /** The table, optionally schema-qualified (`sales.customers`). */
  table: string;
  description: string;
  /** Conflict target for upserts and the identity used for duplicate detection. */
  key: readonly NoInfer<C>[];
  /** Surrogate key used for keyset pagination. */
  idColumn: string;
  columns: Record<C, ColumnSpec>;
  /** Columns the database maintains (id, timestamps): filters may use them, imports and updates may not. */
  system: Record<string, SqlType>;
  /** The job kind that alone writes this dataset (invoices): imports, bulk updates, cleanups and dedupe merges refuse it. */
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

const CURRENCY = /^[A-Z]{3}$/;

const required = (what: string) => ({
  error: (issue: { input: unknown }) => (issue.input === undefined ? 'required' : `must be ${what}`),
});

/** What every column may declare besides its type. */
interface CommonOptions {
  description: string;
  aliases?: string[];
  secret?: boolean;
  /** Steps that bring a value to the stored form before it is validated. */
  normalise?: Normaliser[];
}

/**
 * Runs the declared normalisers before the column's schema and quick check. A value that cannot
 * be normalised (not a phone number) fails with the normaliser's message; one that normalises to
 * blank counts as missing. Row errors keep the raw input: only validation sees the normal form.
 */
function normalised(spec: ColumnSpec): ColumnSpec {
  const normalise = compileNormalisers(spec.declaration.normalise);
  if (!normalise) return spec;
  const { schema, quick } = spec;
  return {
    ...spec,
    schema: z
      .unknown()
      .transform((v, ctx) => {
        if (typeof v !== 'string') return v;
        const n = normalise(v);
        if (typeof n === 'string') return n === '' ? undefined : n;
        ctx.addIssue({ code: 'custom', message: n.failure });
        return z.NEVER;
      })
      .pipe(schema),
    quick: (v) => {
      if (typeof v !== 'string') return quick ? quick(v) : UNDECIDED;
      const n = normalise(v);
      if (typeof n !== 'string' || !quick) return UNDECIDED;
      return quick(n === '' ? undefined : n);
    },
  };
}

/** A column from its parts: the normalisers wrapped around its schema, its declaration kept. */
function column(declaration: ColumnDeclaration, sql: SqlType, schema: z.ZodType, quick: ColumnSpec['quick'], isRequired: boolean): ColumnSpec {
  const { description, aliases, secret } = declaration;
  return normalised({ sql, schema, quick, required: isRequired, description, aliases, secret, declaration });
}

/** Drops options that were not given, so a declaration reads as it was written. */
const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** Column builders: each yields the SQL type, the zod schema and whether a value is required. */
export const col = {
  text(opts: CommonOptions & { required?: boolean; max?: number; pattern?: string; default?: string }): ColumnSpec {
    const max = opts.max ?? 1000;
    const pattern = opts.pattern === undefined ? undefined : new RegExp(opts.pattern);
    let text = z.string(required('text')).trim().min(1, 'must not be blank').max(max, `must be at most ${max} characters`);
    if (pattern) text = text.regex(pattern, `must match ${opts.pattern}`);
    const isRequired = !!opts.required && opts.default === undefined;
    const schema = opts.default !== undefined ? text.optional().transform((v) => v ?? opts.default) : isRequired ? text : text.optional();
    const quick = quickly(isRequired ? UNDECIDED : opts.default, (s) => {
      const t = s.trim();
      return t.length >= 1 && t.length <= max && (!pattern || pattern.test(t)) ? t : UNDECIDED;
    });
    return column(defined({ type: 'text', ...opts, required: !!opts.required }), 'text', schema, quick, isRequired);
  },
  /** Required unless `required: false`: an email is usually what identifies a person. */
  email(opts: CommonOptions & { required?: boolean }): ColumnSpec {
    const isRequired = opts.required ?? true;
    const email = z.string(required('text')).trim().toLowerCase().pipe(z.email({ pattern: emailPattern, error: 'must be a valid email address' }));
    const quick = quickly(isRequired ? UNDECIDED : undefined, (s) => {
      const t = s.trim().toLowerCase();
      return emailPattern.test(t) ? t : UNDECIDED;
    });
    return column(defined({ type: 'email', ...opts, required: isRequired }), 'text', isRequired ? email : email.optional(), quick, isRequired);
  },
  /** An ISO 4217 currency code, stored upper-case; a blank value is `default` when one is given. */
  currency(opts: CommonOptions & { required?: boolean; default?: string }): ColumnSpec {
    const code = z.string(required('a three-letter currency code')).trim().toUpperCase().regex(CURRENCY, 'must be a three-letter currency code such as EUR');
    const isRequired = !!opts.required && opts.default === undefined;
    const schema = opts.default !== undefined ? code.optional().transform((v) => v ?? opts.default) : isRequired ? code : code.optional();
    const quick = quickly(isRequired ? UNDECIDED : opts.default, (s) => {
      const t = s.trim().toUpperCase();
      return CURRENCY.test(t) ? t : UNDECIDED;
    });
    return column(defined({ type: 'currency', ...opts, required: !!opts.required }), 'text', schema, quick, isRequired);
  },
  /**
   * An exact decimal, 0 or more (quantities, prices), kept as its decimal text so that no binary
   * float ever rounds it: `scale` digits after the point at most, `integerDigits` before it, as
   * numeric(integerDigits + scale, scale) holds.
   */
  exactDecimal(opts: CommonOptions & { scale: number; integerDigits: number; required?: boolean }): ColumnSpec {
    const pattern = new RegExp(`^\\d{1,${opts.integerDigits}}(?:\\.\\d{1,${opts.scale}})?$`);
    const base = z.preprocess(
      (v) => (typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v.trim() : v),
      z
        .string({ error: (i) => (i.input === undefined ? 'required' : 'must be a number') })
        .regex(pattern, `must be a number of at most ${opts.integerDigits} digits and ${opts.scale} decimals, 0 or more`),
    );
    const quick = quickly(opts.required ? UNDECIDED : undefined, (s) => {
      const t = s.trim();
      return pattern.test(t) ? t : UNDECIDED;
    });
    return column(defined({ type: 'exact_decimal', ...opts, required: !!opts.required }), 'numeric', opts.required ? base : base.optional(), quick, !!opts.required);
  },
  /** Required unless it has a default or `required: false`. */
  enumOf<const V extends readonly [string, ...string[]]>(values: V, opts: CommonOptions & { default?: V[number]; required?: boolean }): ColumnSpec {
    const isRequired = opts.default === undefined && (opts.required ?? true);
    const base = z.preprocess(
      (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
      z.enum(values, { error: (i) => (i.input === undefined ? 'required' : `must be one of ${values.join(', ')}`) }),
    );
    const schema = opts.default !== undefined ? base.optional().transform((v) => v ?? opts.default) : isRequired ? base : base.optional();
    const allowed = new Set<string>(values);
    const quick = quickly(isRequired ? UNDECIDED : opts.default, (s) => {
      const t = s.trim().toLowerCase();
      return allowed.has(t) ? t : UNDECIDED;
    });
    return column(defined({ type: 'enum', values: [...values], ...opts, required: isRequired }), 'text', schema, quick, isRequired);
  },
  date(opts: CommonOptions & { required?: boolean }): ColumnSpec {
    const formats = dateFormatsOf(opts.normalise);
    const base = z.preprocess(
      (v) => (typeof v === 'string' ? v.trim() : v),
      z.iso.date({ error: (i) => (i.input === undefined ? 'required' : `must be a date as ${['YYYY-MM-DD', ...formats].join(' or ')}`) }).refine(fromYearOne, YEAR_ZERO),
    );
    const quick = quickly(opts.required ? UNDECIDED : undefined, (s) => {
      const t = s.trim();
      return datePattern.test(t) && fromYearOne(t) ? t : UNDECIDED;
    });
    return column(defined({ type: 'date', ...opts, required: !!opts.required }), 'date', opts.required ? base : base.optional(), quick, !!opts.required);
  },
  timestamp(opts: CommonOptions & { required?: boolean }): ColumnSpec {
    const formats = dateFormatsOf(opts.normalise);
    const base = z.preprocess(
      (v) => (typeof v === 'string' ? v.trim() : v),
      z.iso
        .datetime({
          offset: true,
          local: true,
          error: (i) => (i.input === undefined ? 'required' : `must be a timestamp as ${['YYYY-MM-DDTHH:MM:SS[Z|±HH:MM]', ...formats].join(' or ')}`),
        })
        .refine(fromYearOne, YEAR_ZERO),
    );
    return column(defined({ type: 'timestamp', ...opts, required: !!opts.required }), 'timestamptz', opts.required ? base : base.optional(), undefined, !!opts.required);
  },
  /** `max`: the largest value the column's SQL type holds (numeric(12, 2): 9999999999.99); integers are bounded by their type. */
  number(opts: CommonOptions & { sql: 'integer' | 'numeric'; required?: boolean; min?: number; max?: number; positive?: boolean; default?: number }): ColumnSpec {
    let num = z.number({ error: (i) => (i.input === undefined ? 'required' : 'must be a number') });
    if (opts.sql === 'integer') num = num.int('must be a whole number').min(INT4_MIN, `must be at least ${INT4_MIN}`).max(INT4_MAX, `must be at most ${INT4_MAX}`);
    if (opts.max !== undefined) num = num.max(opts.max, `must be at most ${opts.max}`);
    if (opts.positive) num = num.positive('must be greater than 0');
    if (opts.min !== undefined) num = num.min(opts.min, `must be at least ${opts.min}`);
    // CSV gives strings: accept plain decimal notation only, so "1e3" or "0x10" are rejected.
    const parsed = z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), num);
    const schema = opts.default !== undefined ? parsed.optional().transform((v) => v ?? opts.default) : opts.required ? parsed : parsed.optional();
    const isRequired = !!opts.required && opts.default === undefined;
    const { sql, ...rest } = opts;
    return column(defined({ type: sql === 'integer' ? 'integer' : 'decimal', ...rest, required: !!opts.required }), sql, schema, undefined, isRequired);
  },
  /** true or false (any case); the yes_no normaliser adds yes/no, y/n, 1/0, on/off. */
  boolean(opts: CommonOptions & { required?: boolean; default?: boolean }): ColumnSpec {
    const truth: Record<string, boolean> = { true: true, false: false };
    const toBoolean = (s: string) => truth[s.trim().toLowerCase()];
    const base = z.preprocess(
      (v) => (typeof v === 'string' ? (toBoolean(v) ?? v) : v),
      z.boolean({ error: (i) => (i.input === undefined ? 'required' : 'must be true or false') }),
    );
    const isRequired = !!opts.required && opts.default === undefined;
    const schema = opts.default !== undefined ? base.optional().transform((v) => v ?? opts.default) : isRequired ? base : base.optional();
    const quick = quickly(isRequired ? UNDECIDED : opts.default, (s) => toBoolean(s) ?? UNDECIDED);
    return column(defined({ type: 'boolean', ...opts, required: !!opts.required }), 'boolean', schema, quick, isRequired);
  },
};

const dateFormatsOf = (steps: Normaliser[] | undefined) => (steps ?? []).flatMap((n) => (typeof n === 'object' && 'date' in n ? n.date : []));

/** What a secret column's value reads as wherever stored rows are shown. */
export const REDACTED = '[redacted]';

const normaliseHeader = (h: string) => h.trim().toLowerCase().replace(/[\s\-.]+/g, '_');

/** The SQL type of a system column as a declaration names it. */
export const systemTypeName: Record<SqlType, SystemType> = { text: 'text', integer: 'integer', numeric: 'decimal', date: 'date', timestamptz: 'timestamp', boolean: 'boolean' };

/** Double-quotes each part of a (possibly schema-qualified) table name. */
export const quoteTable = (table: string) =>
  table
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.');

export function defineDataset<C extends string>(spec: DatasetSpec<C>) {
  const columnNames = Object.keys(spec.columns) as C[];
  const secrets = columnNames.filter((c) => spec.columns[c].secret);
  const byHeader = new Map<string, C>();
  for (const name of columnNames) {
    byHeader.set(normaliseHeader(name), name);
    for (const alias of spec.columns[name].aliases ?? []) byHeader.set(normaliseHeader(alias), name);
  }
  const declaration: DatasetDeclaration = {
    name: spec.name,
    table: spec.table,
    description: spec.description,
    key: [...spec.key],
    id: spec.idColumn,
    system: Object.fromEntries(Object.entries(spec.system).map(([c, t]) => [c, systemTypeName[t]])),
    columns: Object.fromEntries(columnNames.map((c) => [c, spec.columns[c].declaration])),
    ...(spec.writtenBy && { writtenBy: spec.writtenBy }),
  };
  return {
    ...spec,
    columnNames,
    /** The declaration this dataset compiles from (a YAML file's content, or the col.* options). */
    declaration,
    /** The table as a quoted SQL identifier. */
    sqlTable: quoteTable(spec.table),
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
