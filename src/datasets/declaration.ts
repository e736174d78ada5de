import YAML from 'yaml';
import { z } from 'zod';
import { cacheBookkeeping, defineCacheDataset } from './cache';
import { col, defineDataset, systemTypeName, type ColumnSpec, type Dataset, type SqlType } from './dataset';
import { normaliserName, normaliserSchema, type NormaliserName } from './normalise';

/**
 * A dataset as a YAML file declares it: the table, its key, and each column's type, validation,
 * aliases and normalisers. It compiles to the same column specs (zod schema and quick check) as
 * the col.* builders, which record their options in this shape too.
 */

const name = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lower_snake_case, at most 63 characters');
const columnName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a column name (letters, digits, _)');
const identifierPart = '[A-Za-z_][A-Za-z0-9_]{0,62}';
const tableName = z.string().regex(new RegExp(`^(${identifierPart}\\.)?${identifierPart}$`), 'must be a table name, optionally schema.table');

const common = {
  description: z.string().min(1),
  required: z.boolean().optional(),
  aliases: z.array(z.string().min(1)).optional(),
  secret: z.boolean().optional(),
  normalise: z.array(normaliserSchema).optional(),
};
const bounds = { min: z.number().optional(), max: z.number().optional(), positive: z.boolean().optional() };

export const columnDeclarationSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('text'),
    ...common,
    /** Longest value, in characters (default 1000). */
    max: z.number().int().positive().optional(),
    /** A regular expression the (normalised) value must match. */
    pattern: z
      .string()
      .refine((p) => {
        try {
          new RegExp(p);
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression')
      .optional(),
    default: z.string().optional(),
  }),
  z.strictObject({ type: z.literal('email'), ...common }),
  /** An ISO 4217 code such as EUR, stored upper-case. */
  z.strictObject({ type: z.literal('currency'), ...common, default: z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter currency code such as EUR').optional() }),
  z.strictObject({ type: z.literal('enum'), ...common, values: z.array(z.string().min(1)).min(1), default: z.string().optional() }),
  z.strictObject({ type: z.literal('integer'), ...common, ...bounds, default: z.number().int().optional() }),
  z.strictObject({ type: z.literal('decimal'), ...common, ...bounds, default: z.number().optional() }),
  /** An exact decimal, 0 or more, kept as text (money, quantities): at most `integerDigits` digits before the point and `scale` after. */
  z.strictObject({ type: z.literal('exact_decimal'), ...common, integerDigits: z.number().int().min(1).max(100), scale: z.number().int().min(0).max(100) }),
  z.strictObject({ type: z.literal('boolean'), ...common, default: z.boolean().optional() }),
  z.strictObject({ type: z.literal('date'), ...common }),
  z.strictObject({ type: z.literal('timestamp'), ...common }),
]);
export type ColumnDeclaration = z.infer<typeof columnDeclarationSchema>;
export type ColumnType = ColumnDeclaration['type'];

const systemTypes = ['text', 'integer', 'decimal', 'boolean', 'date', 'timestamp'] as const;
export type SystemType = (typeof systemTypes)[number];

export const sqlTypeOf: Record<ColumnType, SqlType> = {
  text: 'text',
  email: 'text',
  currency: 'text',
  enum: 'text',
  integer: 'integer',
  decimal: 'numeric',
  exact_decimal: 'numeric',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamptz',
};

/** Which normalisers make sense on which column types. */
const normalisersFor: Record<ColumnType, readonly NormaliserName[]> = {
  text: ['trim', 'collapse_spaces', 'lower', 'upper', 'title', 'phone'],
  email: ['trim', 'collapse_spaces', 'lower'],
  currency: ['trim'],
  enum: ['trim', 'collapse_spaces', 'lower', 'upper', 'title'],
  integer: ['trim', 'thousands'],
  decimal: ['trim', 'thousands', 'decimal_comma'],
  exact_decimal: ['trim', 'thousands', 'decimal_comma'],
  boolean: ['trim', 'yes_no'],
  date: ['trim', 'date'],
  timestamp: ['trim', 'date'],
};

export const datasetDeclarationSchema = z
  .strictObject({
    /** The name jobs use; defaults to the file's name. */
    name,
    table: tableName,
    description: z.string().min(1),
    /** The conflict target of upserts: a unique index on exactly these columns must exist. */
    key: z.array(columnName).min(1),
    /** An integer column that orders rows for keyset batches (default id). */
    id: columnName.default('id'),
    /** Columns the database maintains (ids, timestamps): filters may use them, imports and updates may not. */
    system: z.record(columnName, z.enum(systemTypes)).optional(),
    columns: z.record(columnName, columnDeclarationSchema).refine((c) => Object.keys(c).length > 0, 'must declare at least one column'),
    /**
     * A cache of an upstream service's records, kept fresh by cache-refresh runs: one key column
     * (the upstream's id), and the columns refreshes maintain declared under system (updated_at
     * and last_updated: timestamp, last_status: text), which filters may use and imports may not set.
     */
    cache: z.boolean().optional(),
    /**
     * The job kind that alone writes this dataset (invoices: `invoicing`). Imports, bulk updates,
     * cleanups and dedupe merges refuse it; exports and filters read it like any other.
     */
    writtenBy: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a job kind, such as invoicing').optional(),
  })
  .superRefine((d, ctx) => {
    const system = d.system ?? { [d.id]: 'integer' };
    for (const [i, k] of d.key.entries()) {
      const c = d.columns[k];
      if (!c) ctx.addIssue({ code: 'custom', path: ['key', i], message: `"${k}" is not a declared column` });
      else if (!c.required && !('default' in c && c.default !== undefined)) ctx.addIssue({ code: 'custom', path: ['columns', k, 'required'], message: 'a key column must be required' });
    }
    const idType = d.columns[d.id]?.type ?? system[d.id];
    if (idType !== 'integer') ctx.addIssue({ code: 'custom', path: ['id'], message: `"${d.id}" must be an integer column, declared under system or columns` });
    for (const c of Object.keys(system)) {
      if (Object.hasOwn(d.columns, c)) ctx.addIssue({ code: 'custom', path: ['system', c], message: 'is also a declared column' });
    }
    if (d.cache) {
      if (d.key.length !== 1) ctx.addIssue({ code: 'custom', path: ['key'], message: "a cache dataset has one key column, the upstream's id" });
      for (const [c, sql] of Object.entries(cacheBookkeeping)) {
        const type = systemTypeName[sql];
        if (system[c] !== type) ctx.addIssue({ code: 'custom', path: ['system', c], message: `a cache dataset's table has ${c} (${type}), which cache-refresh maintains: declare it under system` });
      }
    }
    for (const [c, decl] of Object.entries(d.columns)) {
      const allowed = normalisersFor[decl.type];
      decl.normalise?.forEach((n, i) => {
        if (!allowed.includes(normaliserName(n))) {
          ctx.addIssue({ code: 'custom', path: ['columns', c, 'normalise', i], message: `${normaliserName(n)} does not apply to a ${decl.type} column (${allowed.join(', ')})` });
        }
      });
      if (decl.type === 'enum' && decl.default !== undefined && !decl.values.includes(decl.default)) {
        ctx.addIssue({ code: 'custom', path: ['columns', c, 'default'], message: `must be one of the values (${decl.values.join(', ')})` });
      }
    }
  });
export type DatasetDeclaration = z.input<typeof datasetDeclarationSchema>;

/** One column's spec from its declaration, built by the same col.* builder a TypeScript dataset uses. */
export function compileColumn(decl: ColumnDeclaration): ColumnSpec {
  // Optional unless declared required, whatever the builder's own default for TypeScript callers.
  const required = decl.required ?? false;
  switch (decl.type) {
    case 'text': {
      const { type: _, ...opts } = decl;
      return col.text({ ...opts, required });
    }
    case 'email': {
      const { type: _, ...opts } = decl;
      return col.email({ ...opts, required });
    }
    case 'currency': {
      const { type: _, ...opts } = decl;
      return col.currency({ ...opts, required });
    }
    case 'enum': {
      const { type: _, values, ...opts } = decl;
      return col.enumOf(values as [string, ...string[]], { ...opts, required });
    }
    case 'exact_decimal': {
      const { type: _, ...opts } = decl;
      return col.exactDecimal({ ...opts, required });
    }
    case 'integer':
    case 'decimal': {
      const { type, ...opts } = decl;
      return col.number({ ...opts, sql: type === 'integer' ? 'integer' : 'numeric', required });
    }
    case 'boolean': {
      const { type: _, ...opts } = decl;
      return col.boolean({ ...opts, required });
    }
    case 'date':
    case 'timestamp': {
      const { type, ...opts } = decl;
      return col[type]({ ...opts, required });
    }
  }
}

const sqlOfSystem: Record<SystemType, SqlType> = { text: 'text', integer: 'integer', decimal: 'numeric', boolean: 'boolean', date: 'date', timestamp: 'timestamptz' };

/** A dataset from a checked declaration. */
export function compileDeclaration(input: DatasetDeclaration): Dataset {
  const d = datasetDeclarationSchema.parse(input);
  const spec = {
    name: d.name,
    table: d.table,
    description: d.description,
    idColumn: d.id,
    columns: Object.fromEntries(Object.entries(d.columns).map(([c, decl]) => [c, compileColumn(decl)])),
    system: Object.fromEntries(Object.entries(d.system ?? { [d.id]: 'integer' as const }).map(([c, t]) => [c, sqlOfSystem[t]])),
    ...(d.writtenBy && { writtenBy: d.writtenBy }),
  };
  return d.cache ? defineCacheDataset({ ...spec, key: d.key[0]! }) : defineDataset({ ...spec, key: d.key });
}

export class DatasetDeclarationError extends Error {}

/** Parses a YAML declaration; every problem is named with the file and the path in it. */
export function parseDeclarationYaml(text: string, file: string, defaultName: string): DatasetDeclaration {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new DatasetDeclarationError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const withName = doc && typeof doc === 'object' && !Array.isArray(doc) ? { name: defaultName, ...doc } : doc;
  const parsed = datasetDeclarationSchema.safeParse(withName);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new DatasetDeclarationError(`${file}: not a valid dataset declaration:\n${lines.join('\n')}`);
  }
  return withName as DatasetDeclaration;
}

/** A declaration as YAML text, in the order a person reads it. */
export function declarationYaml(decl: DatasetDeclaration, comment?: string): string {
  const { name: n, table, description, key, id, cache, writtenBy, system, columns } = decl;
  const body = YAML.stringify({ name: n, table, description, key, id, ...(cache && { cache }), ...(writtenBy && { writtenBy }), ...(system && { system }), columns }, { lineWidth: 0, flowCollectionPadding: false });
  return `${comment ? comment.replace(/^/gm, '# ') + '\n' : ''}${body}`;
}
