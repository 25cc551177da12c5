// Line and bar charts take either explicit series or a table plus the names of its columns; both
// become Series here. `err` is a standard error (or any ± half-width) per point.
import { FactlensError } from '../errors';
import { column, isTable, rowsOf, TableLike } from './table-like';

export interface Series {
  name?: string;
  x: ArrayLike<number | string>;
  y: ArrayLike<number>;
  err?: ArrayLike<number>;
}

/** Which columns of a table to plot: x, one or more y columns, a column to split series by, an error column. */
export interface Columns {
  x?: string;
  y?: string | string[];
  group?: string;
  err?: string | string[];
}

export function toSeries(input: TableLike | Series[], cols: Columns, chart: string): Series[] {
  if (Array.isArray(input)) return input;
  if (!isTable(input)) throw new FactlensError(`${chart}: give an arquero table or an array of {name, x, y} series`);
  if (!cols.x || !cols.y) throw new FactlensError(`${chart}: with a table, name its columns: { x: '...', y: '...' }`);
  const rows = rowsOf(input);
  const names = input.columnNames();
  const ys = Array.isArray(cols.y) ? cols.y : [cols.y];
  const errs = cols.err === undefined ? [] : Array.isArray(cols.err) ? cols.err : [cols.err];
  const groups = cols.group ? Array.from(new Set(column(rows, names, cols.group))) : [undefined];
  const out: Series[] = [];
  for (const g of groups) {
    const sel = cols.group ? rows.filter((r) => r[cols.group as string] === g) : rows;
    ys.forEach((y, k) => {
      const name = [g === undefined ? '' : String(g), ys.length > 1 ? y : ''].filter(Boolean).join(' ') || y;
      out.push({
        name,
        x: column(sel, names, cols.x as string) as Array<number | string>,
        y: column(sel, names, y).map(Number),
        err: errs[k] === undefined ? undefined : column(sel, names, errs[k]).map(Number),
      });
    });
  }
  return out;
}
