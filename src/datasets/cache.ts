import { defineDataset, type ColumnSpec, type SqlType } from './dataset';

/** Where a cached row stands: never refreshed, refreshed, gone upstream, or its last refresh failed. */
export const cacheStatuses = ['pending', 'ok', 'not_found', 'error'] as const;
export type CacheStatus = (typeof cacheStatuses)[number];

/** The columns of every cache table that refreshes maintain, and their types (updated_at moves only when a refresh changes the row). */
export const cacheBookkeeping = { updated_at: 'timestamptz', last_updated: 'timestamptz', last_status: 'text' } as const satisfies Record<string, SqlType>;

/**
 * A dataset that mirrors records another service owns: one row per upstream record, keyed by the
 * upstream's id, kept fresh by `cache-refresh` runs. Besides its columns, its table has the
 * refresh's bookkeeping as system columns (filters may use them, imports may not set them):
 * `last_updated` (when a refresh last settled the row; NULL until the first) and `last_status`
 * (one of cacheStatuses, 'pending' at first). The migration must create them with those names,
 * next to `id bigserial`, `created_at` and `updated_at`; see migrations/010_product_cache.sql.
 * A YAML declaration says the same with `cache: true` and these columns under `system`.
 */
export function defineCacheDataset<C extends string>(spec: {
  name: string;
  table: string;
  description: string;
  key: NoInfer<C>;
  columns: Record<C, ColumnSpec>;
  idColumn?: string;
  /** The other columns the database maintains (the bookkeeping is added to them). */
  system?: Record<string, SqlType>;
}) {
  const dataset = defineDataset({
    name: spec.name,
    table: spec.table,
    description: spec.description,
    key: [spec.key],
    idColumn: spec.idColumn ?? 'id',
    columns: spec.columns,
    system: { ...(spec.system ?? { id: 'integer', created_at: 'timestamptz' }), ...cacheBookkeeping },
  });
  return {
    ...dataset,
    declaration: { ...dataset.declaration, cache: true },
    cache: {
      key: spec.key,
      /** The columns a refresh writes from the upstream's answer: every column but the key. */
      fields: dataset.columnNames.filter((c) => c !== spec.key),
      refreshedAt: 'last_updated',
      status: 'last_status',
    },
  };
}
export type CacheDataset = ReturnType<typeof defineCacheDataset<string>>;

/** A record from the upstream checked against the dataset: its values by column, or what is wrong with it. */
export type ReadRecord = { values: Record<string, unknown> } | { issues: { field: string | null; message: string }[] };

/**
 * Reads upstream records into a cache dataset's columns: each column from the response field the
 * mapping names for it (a dotted path for nested fields), else from the top-level field of its
 * name or alias; each value validated and normalised by the column's own schema, as an import
 * would. JSON null counts as missing.
 */
export function recordReader(dataset: CacheDataset, mapping: Record<string, string> = {}) {
  const mapped = new Map(Object.entries(mapping).map(([field, column]) => [column, field.split('.')]));
  const named = (item: Record<string, unknown>) => {
    const byColumn = new Map<string, unknown>();
    for (const [field, value] of Object.entries(item)) {
      const column = dataset.columnFor(field);
      if (column && !mapped.has(column) && !byColumn.has(column)) byColumn.set(column, value);
    }
    return byColumn;
  };
  const valueOf = (item: Record<string, unknown>, byColumn: Map<string, unknown>, column: string) => {
    const path = mapped.get(column);
    return path ? valueAt(item, path) : byColumn.get(column);
  };
  return {
    /** The record's key as the upstream gives it (matching rows to a batch endpoint's records). */
    keyOf(item: unknown): unknown {
      return isRecord(item) ? valueOf(item, named(item), dataset.cache.key) : undefined;
    },
    read(item: unknown): ReadRecord {
      if (!isRecord(item)) return { issues: [{ field: null, message: 'the response is not a JSON object' }] };
      const byColumn = named(item);
      const values: Record<string, unknown> = {};
      const issues: { field: string; message: string }[] = [];
      for (const column of dataset.cache.fields) {
        const value = valueOf(item, byColumn, column);
        const parsed = dataset.columns[column]!.schema.safeParse(value === null ? undefined : value);
        if (parsed.success) values[column] = parsed.data;
        else issues.push({ field: column, message: parsed.error.issues[0]?.message ?? 'invalid value' });
      }
      return issues.length > 0 ? { issues } : { values };
    },
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value at a dotted path (`pricing.amount`) of a parsed JSON answer; undefined when absent. */
export function valueAt(value: unknown, path: readonly string[]): unknown {
  let at = value;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}
