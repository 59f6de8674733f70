/**
 * The Jamf Pro API's list parameters: `page` (0-based), `page-size` (default 100; above 2000
 * silently clamped to 2000, jamf-wire-2026.md 1.6; 0 is refused), `sort` (`field:asc|desc`, comma-joined or repeated; `field` alone is ascending;
 * default `id:asc`) and `filter` (RSQL). Answers `{totalCount, results}`.
 */
import { JamfApiError } from './errors.ts';
import { compileFilter, type Getter } from './rsql.ts';

export const MAX_PAGE_SIZE = 2000;
const DEFAULT_PAGE_SIZE = 100;

export interface ListSpec<T> {
  /** Fields this endpoint filters on. */
  filterFields: readonly string[];
  /** Fields this endpoint sorts on. */
  sortFields: readonly string[];
  /** Reads a field of a row (as filter and sort see it). */
  get: (row: T, field: string) => ReturnType<Getter>;
  /** Numeric fields sort as numbers. */
  numericFields: readonly string[];
}

function intParam(params: URLSearchParams, name: string, fallback: number): number {
  const raw = params.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new JamfApiError(400, 'INVALID_FIELD', `${name} must be a non-negative integer`, name);
  }
  return n;
}

function sortKeys(params: URLSearchParams, allowed: readonly string[]): Array<[string, number]> {
  const keys: Array<[string, number]> = [];
  for (const raw of params.getAll('sort')) {
    for (const part of raw.split(',')) {
      if (!part.trim()) continue;
      const [field = '', dir = 'asc'] = part.trim().split(':');
      if (!allowed.includes(field) || !/^(asc|desc)$/i.test(dir)) {
        throw new JamfApiError(400, 'INVALID_FIELD', `Invalid sort criteria: ${part}`, 'sort');
      }
      keys.push([field, dir.toLowerCase() === 'desc' ? -1 : 1]);
    }
  }
  if (!keys.some(([f]) => f === 'id')) keys.push(['id', 1]);
  return keys;
}

export function listRows<T>(
  rows: readonly T[],
  params: URLSearchParams,
  spec: ListSpec<T>,
): { totalCount: number; results: T[] } {
  const page = intParam(params, 'page', 0);
  const pageSize = Math.min(intParam(params, 'page-size', DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE);
  if (pageSize < 1) {
    throw new JamfApiError(400, 'INVALID_FIELD', 'page-size must be at least 1', 'page-size');
  }
  const filterText = params.get('filter');
  let selected = [...rows];
  if (filterText !== null && filterText.trim() !== '') {
    const match = compileFilter(filterText, spec.filterFields);
    selected = selected.filter(row => match(field => spec.get(row, field)));
  }
  const keys = sortKeys(params, spec.sortFields);
  selected.sort((a, b) => {
    for (const [field, dir] of keys) {
      const c = compareValues(
        spec.get(a, field),
        spec.get(b, field),
        spec.numericFields.includes(field),
      );
      if (c !== 0) return c * dir;
    }
    return 0;
  });
  return {
    totalCount: selected.length,
    results: selected.slice(page * pageSize, (page + 1) * pageSize),
  };
}

function compareValues(a: unknown, b: unknown, numeric: boolean): number {
  if (numeric) return Number(a ?? 0) - Number(b ?? 0);
  const sa = a === null || a === undefined ? '' : String(a);
  const sb = b === null || b === undefined ? '' : String(b);
  return sa.localeCompare(sb, 'en', { sensitivity: 'base' });
}
