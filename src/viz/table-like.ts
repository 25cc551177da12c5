// Charts and tables accept an arquero table without importing arquero (ESM-only, and not needed to
// read one): anything with arquero's columnNames/numRows/objects methods will do.
import { FactlensError } from '../errors';

export interface TableLike {
  columnNames(): string[];
  numRows(): number;
  objects(options?: { limit?: number }): object[];
}

export type Row = Record<string, unknown>;

/** The table's rows as plain objects. */
export function rowsOf(t: TableLike, limit?: number): Row[] {
  return t.objects(limit === undefined ? undefined : { limit }) as Row[];
}

export function isTable(x: unknown): x is TableLike {
  const t = x as TableLike;
  return !!t && typeof t.columnNames === 'function' && typeof t.numRows === 'function' && typeof t.objects === 'function';
}

/** The column `name` of a table's rows, failing with the available columns if it is missing. */
export function column(rows: Row[], columns: string[], name: string): unknown[] {
  if (!columns.includes(name)) throw new FactlensError(`no column '${name}' in table (columns: ${columns.join(', ')})`);
  return rows.map((r) => r[name]);
}
