import { z } from 'zod';
import type { Dataset, SqlType } from '../datasets';
import { suggestKey } from './strict';

/**
 * Structured row filters and `set` values: what callers give instead of SQL. A filter names a
 * column the dataset declares, an operator from a fixed list and a value; filters nest with
 * and / or / not. Columns become quoted identifiers from the declaration, values become bind
 * parameters, so no caller text ever reaches SQL as code.
 */

export const filterOps = ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in', 'is_null', 'not_null', 'contains', 'starts_with'] as const;
export type FilterOp = (typeof filterOps)[number];

type Scalar = string | number | boolean;
export interface Condition {
  field: string;
  op: FilterOp;
  value?: Scalar | Scalar[];
}
export type Filter = Condition | { and: Filter[] } | { or: Filter[] } | { not: Filter };

/** A value for a column in `set`: a literal, null, or (dates and timestamps) "now" / a relative time. */
export type SetValues = Record<string, Scalar | null>;

// Shape only; checkFilter validates it against the dataset and says exactly what is wrong where.
export const filterSchema = z.custom<Filter>((v) => isObject(v), 'must be a filter object such as {"field": "status", "op": "eq", "value": "active"}');
export const setSchema = z.custom<SetValues>((v) => isObject(v) && Object.keys(v).length > 0, 'must be an object of column → value with at least one column');

/** `; did you mean "status"?` for a near miss of a known name, else nothing. */
function didYouMean(given: unknown, known: readonly string[]): string {
  const meant = typeof given === 'string' ? suggestKey(given, known) : undefined;
  return meant ? `; did you mean "${meant}"?` : '';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface Issue {
  path: (string | number)[];
  message: string;
}

const MAX_DEPTH = 10;
const MAX_LIST = 10_000;

const RELATIVE = /^\s*(now(?:\(\))?|today)\s*(?:([+-])\s*(\d{1,6})\s*(second|minute|hour|day|week|month|year)s?)?\s*$/i;
const AGO = /^\s*(\d{1,6})\s*(second|minute|hour|day|week|month|year)s?\s+ago\s*$/i;

/** True for "now", "now()", "today", "now - 1 year", "today + 7 days", "30 days ago". */
export const isRelativeTime = (v: unknown): v is string => typeof v === 'string' && (RELATIVE.test(v) || AGO.test(v));

/** Resolves a relative time against `asOf` (the run's start, fixed for its whole life). */
export function resolveRelativeTime(value: string, asOf: Date, sql: 'date' | 'timestamptz'): string {
  const ago = AGO.exec(value);
  const m = RELATIVE.exec(value);
  const [base, sign, amount, unit] = ago ? ['now', '-', ago[1], ago[2]] : [m![1]!, m![2], m![3], m![4]];
  const t = new Date(asOf.getTime());
  if (base.toLowerCase() === 'today') t.setUTCHours(0, 0, 0, 0);
  if (sign && amount && unit) {
    const n = Number(amount) * (sign === '-' ? -1 : 1);
    switch (unit.toLowerCase()) {
      case 'second': t.setUTCSeconds(t.getUTCSeconds() + n); break;
      case 'minute': t.setUTCMinutes(t.getUTCMinutes() + n); break;
      case 'hour': t.setUTCHours(t.getUTCHours() + n); break;
      case 'day': t.setUTCDate(t.getUTCDate() + n); break;
      case 'week': t.setUTCDate(t.getUTCDate() + 7 * n); break;
      case 'month': addMonths(t, n); break;
      case 'year': addMonths(t, 12 * n); break;
    }
  }
  return sql === 'date' ? t.toISOString().slice(0, 10) : t.toISOString();
}

/** Adds months as Postgres does: Mar 31 - 1 month is Feb 29 (or 28), not Mar 2. */
function addMonths(t: Date, n: number): void {
  const day = t.getUTCDate();
  t.setUTCDate(1);
  t.setUTCMonth(t.getUTCMonth() + n);
  const lastDay = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 0)).getUTCDate();
  t.setUTCDate(Math.min(day, lastDay));
}

/** A calendar date that exists: Date.parse would take 2024-02-30 and roll it over. */
const isCalendarDate = (ymd: string) => new Date(`${ymd}T00:00:00Z`).toISOString().slice(0, 10) === ymd;

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/** Checks one value for a column and returns it normalised, or the problem. */
function checkValue(dataset: Dataset, field: string, sql: SqlType, value: unknown, useColumnSchema: boolean): { value: Scalar } | { error: string } {
  switch (sql) {
    case 'integer':
    case 'numeric': {
      const n = typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) return { error: 'must be a number' };
      if (sql === 'integer' && !Number.isSafeInteger(n)) return { error: 'must be a whole number' };
      return { value: n };
    }
    case 'boolean':
      return typeof value === 'boolean' ? { value } : { error: 'must be true or false' };
    case 'date':
    case 'timestamptz': {
      if (isRelativeTime(value)) return { value };
      const iso = sql === 'date' ? ISO_DATE : ISO_TIMESTAMP;
      if (typeof value !== 'string' || !iso.test(value) || Number.isNaN(Date.parse(value)) || !isCalendarDate(value.slice(0, 10))) {
        return { error: `must be ${sql === 'date' ? 'a date as YYYY-MM-DD' : 'an ISO timestamp'} or a relative time such as "now - 30 days"` };
      }
      return { value };
    }
    case 'text': {
      if (typeof value !== 'string') return { error: 'must be a string' };
      const column = dataset.columns[field];
      if (!useColumnSchema || !column) return { value };
      // Enumerations and emails normalise (trim, lower-case) and reject impossible values early.
      const parsed = column.schema.safeParse(value);
      return parsed.success ? { value: parsed.data as Scalar } : { error: parsed.error.issues[0]?.message ?? 'invalid value' };
    }
  }
}

/** Every problem in a filter, with its path; an empty list means the filter is valid. */
export function checkFilter(dataset: Dataset, filter: unknown, path: (string | number)[] = [], depth = 0): Issue[] {
  if (!isObject(filter)) return [{ path, message: 'must be a filter object' }];
  if (depth > MAX_DEPTH) return [{ path, message: `filters may nest at most ${MAX_DEPTH} levels` }];
  const keys = Object.keys(filter);
  for (const combinator of ['and', 'or'] as const) {
    if (combinator in filter) {
      if (keys.length !== 1) return [{ path, message: `"${combinator}" must be the only key of its object` }];
      const parts = filter[combinator];
      if (!Array.isArray(parts) || parts.length === 0 || parts.length > 100) return [{ path: [...path, combinator], message: 'must be a list of 1 to 100 filters' }];
      return parts.flatMap((part, i) => checkFilter(dataset, part, [...path, combinator, i], depth + 1));
    }
  }
  if ('not' in filter) {
    if (keys.length !== 1) return [{ path, message: '"not" must be the only key of its object' }];
    return checkFilter(dataset, filter.not, [...path, 'not'], depth + 1);
  }

  const extra = keys.filter((k) => !['field', 'op', 'value'].includes(k));
  if (extra.length > 0) {
    const message = `unknown key: a filter is {field, op, value}, or {and: [...]}, {or: [...]}, {not: {...}}${didYouMean(extra[0]!, ['field', 'op', 'value', 'and', 'or', 'not'])}`;
    return [{ path: [...path, extra[0]!], message }];
  }
  const { field, op, value } = filter;
  const sql = typeof field === 'string' ? dataset.filterType(field) : undefined;
  if (sql === undefined) {
    return [{ path: [...path, 'field'], message: `must be a column of ${dataset.name}${didYouMean(field, dataset.filterableColumns)} (${dataset.filterableColumns.join(', ')})` }];
  }
  if (typeof op !== 'string' || !(filterOps as readonly string[]).includes(op)) {
    return [{ path: [...path, 'op'], message: `must be one of ${filterOps.join(', ')}${didYouMean(op, filterOps)}` }];
  }
  const at = [...path, 'value'];
  if (op === 'is_null' || op === 'not_null') return value === undefined ? [] : [{ path: at, message: `must be absent for op ${op}` }];
  if (value === undefined) return [{ path: at, message: `required for op ${op}` }];
  if ((op === 'contains' || op === 'starts_with') && sql !== 'text') return [{ path: [...path, 'op'], message: `${op} applies to text columns only` }];
  if (sql === 'boolean' && !['eq', 'ne', 'in', 'not_in'].includes(op)) return [{ path: [...path, 'op'], message: `${op} does not apply to a true/false column` }];
  const exact = ['eq', 'ne', 'in', 'not_in'].includes(op);
  if (op === 'in' || op === 'not_in') {
    if (!Array.isArray(value) || value.length === 0 || value.length > MAX_LIST) return [{ path: at, message: `must be a list of 1 to ${MAX_LIST} values for op ${op}` }];
    return value.flatMap((v, i) => {
      const checked = checkValue(dataset, field as string, sql, v, exact);
      return 'error' in checked ? [{ path: [...at, i], message: checked.error }] : [];
    });
  }
  const checked = checkValue(dataset, field as string, sql, value, exact);
  return 'error' in checked ? [{ path: at, message: checked.error }] : [];
}

/** Every problem in a `set`, with its path: only declared, non-key columns, with valid values. */
export function checkSet(dataset: Dataset, set: unknown, path: (string | number)[] = []): Issue[] {
  if (!isObject(set) || Object.keys(set).length === 0) return [{ path, message: 'must be an object of column → value with at least one column' }];
  return Object.entries(set).flatMap(([column, value]): Issue[] => {
    const at = [...path, column];
    const spec = dataset.isColumn(column) ? dataset.columns[column]! : undefined;
    if (!spec) {
      const settable = dataset.columnNames.filter((c) => !dataset.key.includes(c));
      return [{ path: at, message: `is not a column of ${dataset.name} that updates may set${didYouMean(column, settable)} (${settable.join(', ')})` }];
    }
    if (dataset.key.includes(column)) return [{ path: at, message: `is the key of ${dataset.name}; a bulk update may not change it` }];
    if (value === null) return spec.required ? [{ path: at, message: 'is required and may not be set to null' }] : [];
    if ((spec.sql === 'date' || spec.sql === 'timestamptz') && isRelativeTime(value)) return [];
    const parsed = spec.schema.safeParse(value);
    return parsed.success ? [] : [{ path: at, message: parsed.error.issues[0]?.message ?? 'invalid value' }];
  });
}

/** Column values as the database stores them: normalised by the column's schema, relative times resolved. */
export function resolveSet(dataset: Dataset, set: SetValues, asOf: Date): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(set).map(([column, value]) => {
      const spec = dataset.columns[column]!;
      if (value === null) return [column, null];
      if ((spec.sql === 'date' || spec.sql === 'timestamptz') && isRelativeTime(value)) return [column, resolveRelativeTime(value, asOf, spec.sql)];
      return [column, spec.schema.parse(value)];
    }),
  );
}

/** A checked filter value as the database compares it: normalised, relative times resolved. */
export function filterValue(dataset: Dataset, condition: Condition, value: Scalar, asOf: Date): Scalar {
  const sql = dataset.filterType(condition.field)!;
  if ((sql === 'date' || sql === 'timestamptz') && isRelativeTime(value)) return resolveRelativeTime(value, asOf, sql);
  const checked = checkValue(dataset, condition.field, sql, value, ['eq', 'ne', 'in', 'not_in'].includes(condition.op));
  return 'value' in checked ? checked.value : value;
}
