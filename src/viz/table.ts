// Tables as HTML: an arquero table (or an array of row objects) with a row limit and numbers
// rounded, so a 20,000-row result shows its head and says how many rows it has.
import { display } from './tslab';
import { isTable, Row, rowsOf, TableLike } from './table-like';

export interface TableOptions {
  /** Rows shown (default 20). */
  limit?: number;
  /** Significant digits for non-integer numbers (default 4). */
  digits?: number;
  /** Caption above the table. */
  title?: string;
  /** Columns to show, in order (default all). */
  columns?: string[];
}

type Rows = Row[];

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function formatCell(v: unknown, digits = 4): string {
  if (typeof v === 'number') {
    if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
    return String(Number(v.toPrecision(digits)));
  }
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function sliceRows(input: TableLike | Rows, limit: number): { rows: Rows; total: number; columns: string[] } {
  if (isTable(input)) return { rows: rowsOf(input, limit), total: input.numRows(), columns: input.columnNames() };
  const columns = Array.from(new Set(input.flatMap((r) => Object.keys(r))));
  return { rows: input.slice(0, limit), total: input.length, columns };
}

export function tableHtml(input: TableLike | Rows, opts: TableOptions = {}): string {
  const limit = opts.limit ?? 20;
  const { rows, total, columns: all } = sliceRows(input, limit);
  const columns = opts.columns ?? all;
  const numeric = columns.map((c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number' || r[c] == null));
  const align = (i: number) => (numeric[i] ? ' style="text-align:right"' : ' style="text-align:left"');
  const head = columns.map((c, i) => `<th${align(i)}>${escapeHtml(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${columns.map((c, i) => `<td${align(i)}>${escapeHtml(formatCell(r[c], opts.digits))}</td>`).join('')}</tr>`);
  const note = total > rows.length ? `<p style="color:#666;font-size:90%">${rows.length} of ${total} rows</p>` : '';
  const caption = opts.title ? `<caption style="font-weight:bold;text-align:left">${escapeHtml(opts.title)}</caption>` : '';
  return `<table class="factlens-table">${caption}<thead><tr>${head}</tr></thead><tbody>${body.join('')}</tbody></table>${note}`;
}

/** Plain-text rendering (outside notebooks, and the text/plain part of the output). */
export function tableText(input: TableLike | Rows, opts: TableOptions = {}): string {
  const { rows, total, columns: all } = sliceRows(input, opts.limit ?? 20);
  const columns = opts.columns ?? all;
  const cells = [columns, ...rows.map((r) => columns.map((c) => formatCell(r[c], opts.digits)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const lines = cells.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  if (total > rows.length) lines.push(`(${rows.length} of ${total} rows)`);
  return (opts.title ? opts.title + '\n' : '') + lines.join('\n');
}

/** Shows a table in the notebook; outside one, prints it as text. */
export function showTable(input: TableLike | Rows, opts: TableOptions = {}): void {
  if (!display({ 'text/html': tableHtml(input, opts), 'text/plain': tableText(input, opts) })) {
    console.log(tableText(input, opts));
  }
}
