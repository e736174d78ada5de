import { readTableCatalogue, type CatalogueColumn, type TableCatalogue } from '../db/catalogue';
import type { Pool } from '../db/pool';
import type { Dataset, SqlType } from './dataset';
import type { ColumnDeclaration, DatasetDeclaration } from './declaration';
import { codeDatasets } from './index';
import { loadDatasets, type DatasetRegistry } from './registry';

/**
 * Declarations held against the live tables. A declaration that names a column the table lacks,
 * gives a column a type the table cannot hold, or keys on columns without a unique index would
 * fail runs later, batch by batch: the worker and the API refuse to start instead.
 */

/** The Postgres types each declared SQL type loads into and reads back from. */
const compatible: Record<SqlType, readonly string[]> = {
  text: ['text', 'varchar', 'bpchar', 'citext'],
  integer: ['int2', 'int4', 'int8'],
  numeric: ['numeric', 'float4', 'float8'],
  date: ['date'],
  timestamptz: ['timestamptz', 'timestamp'],
  boolean: ['bool'],
};
const typeWord: Record<SqlType, string> = { text: 'text', integer: 'integer', numeric: 'decimal', date: 'date', timestamptz: 'timestamp', boolean: 'boolean' };

export interface DatasetCheck {
  dataset: string;
  source: string;
  table: string;
  /** Problems that make runs on the dataset fail: the process does not start. */
  errors: string[];
  /** Likely mistakes that do not stop it. */
  warnings: string[];
}

const sameColumns = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((c) => b.includes(c));

/** What is wrong between one declaration and its table's catalogue (undefined: no such table). */
export function checkAgainstTable(dataset: Dataset, table: TableCatalogue | undefined): Pick<DatasetCheck, 'errors' | 'warnings'> {
  if (!table) return { errors: [`table ${dataset.table} does not exist`], warnings: [] };
  const errors: string[] = [];
  const warnings: string[] = [];
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const declared: [string, SqlType][] = [...dataset.columnNames.map((c): [string, SqlType] => [c, dataset.columns[c]!.sql]), ...Object.entries(dataset.system)];
  for (const [name, sql] of declared) {
    const column = byName.get(name);
    if (!column) errors.push(`column ${name} is not in table ${table.name} (its columns: ${table.columns.map((c) => c.name).join(', ')})`);
    else if (!compatible[sql].includes(column.udt)) errors.push(`column ${name} is declared ${typeWord[sql]} but is ${column.type} in table ${table.name}`);
  }
  const id = byName.get(dataset.idColumn);
  if (id && !['int2', 'int4', 'int8'].includes(id.udt)) errors.push(`id column ${dataset.idColumn} must be an integer column to order keyset batches; it is ${id.type}`);
  if (!table.uniqueKeys.some((k) => sameColumns(k.columns, dataset.key))) {
    const existing = table.uniqueKeys.map((k) => `(${k.columns.join(', ')})`).join(', ') || 'none';
    errors.push(`key (${dataset.key.join(', ')}) has no unique index on exactly those columns, which upserts need (unique indexes: ${existing}); CREATE UNIQUE INDEX ON ${table.name} (${dataset.key.join(', ')})`);
  }
  for (const c of dataset.columnNames) {
    const column = byName.get(c);
    const spec = dataset.columns[c]!;
    const hasDefault = 'default' in spec.declaration && spec.declaration.default !== undefined;
    if (column?.notNull && !spec.required && !hasDefault) warnings.push(`column ${c} is NOT NULL in the table but optional in the declaration: a row without it fails its whole batch; declare it required or give it a default`);
    const length = column && /^character varying\((\d+)\)$/.exec(column.type)?.[1];
    const max = spec.declaration.type === 'text' ? (spec.declaration.max ?? 1000) : undefined;
    if (length && max !== undefined && max > Number(length)) warnings.push(`column ${c} holds at most ${length} characters but the declaration allows ${max}: declare max: ${length}`);
  }
  const covered = new Set<string>(declared.map(([n]) => n));
  for (const column of table.columns) {
    if (!covered.has(column.name) && column.notNull && column.default === null) {
      warnings.push(`column ${column.name} is NOT NULL without a default but not declared: inserting a new row fails`);
    }
  }
  return { errors, warnings };
}

/** Every declaration of the registry held against its table. */
export async function checkDatasets(pool: Pool, datasets: DatasetRegistry): Promise<DatasetCheck[]> {
  return Promise.all(
    datasets.all().map(async (dataset) => ({
      dataset: dataset.name,
      source: datasets.sourceOf(dataset.name) ?? 'code',
      table: dataset.table,
      ...checkAgainstTable(dataset, await readTableCatalogue(pool, dataset.sqlTable)),
    })),
  );
}

export class DatasetMismatchError extends Error {}

/** The check a worker and the API run at start: a mismatch stops the process, naming each problem. */
export async function assertDatasetsMatchTables(pool: Pool, datasets: DatasetRegistry, log: (msg: string) => void = console.warn): Promise<void> {
  const checks = await checkDatasets(pool, datasets);
  for (const c of checks) for (const w of c.warnings) log(`dataset ${c.dataset} (${c.source}): warning: ${w}`);
  const failing = checks.filter((c) => c.errors.length > 0);
  if (failing.length === 0) return;
  const lines = failing.flatMap((c) => [`dataset ${c.dataset} (${c.source}):`, ...c.errors.map((e) => `  ${e}`)]);
  throw new DatasetMismatchError(`Dataset declarations do not match their tables:\n${lines.join('\n')}\n(batchflow datasets check shows the same; fix the declaration or the table)`);
}

/** The datasets of these directories (and those in code), each checked against its table. */
export async function openDatasets(dirs: readonly string[], pool: Pool, log?: (msg: string) => void): Promise<DatasetRegistry> {
  const datasets = loadDatasets(dirs, codeDatasets);
  await assertDatasetsMatchTables(pool, datasets, log);
  return datasets;
}

// CHECK (col IN ('a', 'b')) prints as CHECK ((col = ANY (ARRAY['a'::text, 'b'::text]))).
const enumCheck = (column: string, checks: readonly string[]): string[] | undefined => {
  for (const def of checks) {
    const m = new RegExp(`^CHECK \\(\\(\\(?"?${column}"?\\)?(?:::text)? = ANY \\(\\(?ARRAY\\[(.*)\\]\\)?(?:::text\\[\\])?\\)\\)\\)$`).exec(def);
    if (m) return [...m[1]!.matchAll(/'((?:[^']|'')*)'/g)].map((v) => v[1]!.replace(/''/g, "'"));
  }
  return undefined;
};

// A column default that is a plain literal: 'user'::text, 0, false.
const literalDefault = (expr: string | null): string | number | boolean | undefined => {
  if (expr === null) return undefined;
  const text = /^'((?:[^']|'')*)'::[a-z ]+$/.exec(expr);
  if (text) return text[1]!.replace(/''/g, "'");
  if (/^-?\d+(\.\d+)?$/.test(expr)) return Number(expr);
  if (expr === 'true' || expr === 'false') return expr === 'true';
  return undefined;
};

const isSystemTimestamp = (c: CatalogueColumn) => ['created_at', 'updated_at'].includes(c.name) && ['timestamptz', 'timestamp'].includes(c.udt) && c.default !== null;

/** A column declaration from its catalogue entry, or why it cannot be declared. */
function scaffoldColumn(c: CatalogueColumn, checks: readonly string[]): ColumnDeclaration | string {
  const dflt = literalDefault(c.default);
  const required = c.notNull && c.default === null;
  const base = { description: c.comment ?? `TODO: describe ${c.name}.`, ...(required && { required: true }) };
  const values = enumCheck(c.name, checks);
  switch (c.udt) {
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'citext': {
      if (values) return { type: 'enum', values, ...base, ...(typeof dflt === 'string' && { default: dflt }) };
      if (/email/i.test(c.name)) return { type: 'email', ...base };
      const length = /\((\d+)\)$/.exec(c.type)?.[1];
      return { type: 'text', ...base, ...(length && { max: Number(length) }), ...(typeof dflt === 'string' && { default: dflt }) };
    }
    case 'int2':
    case 'int4':
    case 'int8':
      return { type: 'integer', ...base, ...(typeof dflt === 'number' && { default: dflt }) };
    case 'numeric':
    case 'float4':
    case 'float8': {
      const [, p, s] = /numeric\((\d+),(\d+)\)/.exec(c.type) ?? [];
      const max = p && s ? Number(`${'9'.repeat(Number(p) - Number(s))}${Number(s) > 0 ? `.${'9'.repeat(Number(s))}` : ''}`) : undefined;
      return { type: 'decimal', ...base, ...(max !== undefined && { max }), ...(typeof dflt === 'number' && { default: dflt }) };
    }
    case 'bool':
      return { type: 'boolean', ...base, ...(typeof dflt === 'boolean' && { default: dflt }) };
    case 'date':
      return { type: 'date', ...base };
    case 'timestamptz':
    case 'timestamp':
      return { type: 'timestamp', ...base };
    default:
      return `${c.name} (${c.type}): no declared type loads into it`;
  }
}

/**
 * A declaration drafted from a table's catalogue: columns with their types, lengths, CHECK-listed
 * values and literal defaults; the integer primary key and maintained timestamps as system
 * columns; the first other unique key as the key. Descriptions, aliases and normalisers are left
 * to the person who reviews it.
 */
export function scaffoldDeclaration(table: TableCatalogue, name: string): { declaration: DatasetDeclaration; notes: string[] } {
  const notes: string[] = [];
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const primary = table.uniqueKeys.find((k) => k.primary);
  const idName = primary?.columns.length === 1 && ['int2', 'int4', 'int8'].includes(byName.get(primary.columns[0]!)!.udt) ? primary.columns[0]! : undefined;
  const key = table.uniqueKeys.find((k) => !k.primary && k.columns.every((c) => byName.get(c)?.notNull))?.columns ?? primary?.columns ?? [];
  if (!idName) notes.push('no integer primary key: bulk updates, cleanups and dedupe order rows by an integer id column; name one as id');
  if (key.length === 0) notes.push('no unique index: declare a key and create a unique index on it');
  const system: Record<string, 'integer' | 'timestamp'> = {};
  if (idName && !key.includes(idName)) system[idName] = 'integer';
  for (const c of table.columns) if (isSystemTimestamp(c)) system[c.name] = 'timestamp';
  const columns: Record<string, ColumnDeclaration> = {};
  for (const c of table.columns) {
    if (Object.hasOwn(system, c.name)) continue;
    const decl = scaffoldColumn(c, table.checks);
    if (typeof decl === 'string') notes.push(`left out ${decl}`);
    else columns[c.name] = key.includes(c.name) ? { ...decl, required: true } : decl;
  }
  return {
    declaration: {
      name,
      table: table.name,
      description: table.comment ?? `TODO: describe ${table.name}.`,
      key,
      id: idName ?? 'id',
      ...(Object.keys(system).length > 0 && { system }),
      columns,
    },
    notes,
  };
}
