/**
 * Averages over prompts with standard errors, as the paper's knockout curves (mean ± SE band) and
 * path-blocking bars (mean IE per layer) show them.
 */
import * as aq from 'arquero';
import type { Table } from './mamba-knockout';

/** Mean, standard error (sample sd / √n) and n of `value`, per combination of the `by` columns. */
export function meanSe(table: Table, by: string[], value: string): Table {
  const groups = new Map<string, { keys: Record<string, unknown>; xs: number[] }>();
  for (const r of table.objects() as Array<Record<string, unknown>>) {
    const keys = Object.fromEntries(by.map((b) => [b, r[b]]));
    const id = JSON.stringify(by.map((b) => r[b]));
    const g = groups.get(id) ?? { keys, xs: [] };
    const x = Number(r[value]);
    if (Number.isFinite(x)) g.xs.push(x);
    groups.set(id, g);
  }
  return aq.from([...groups.values()].map(({ keys, xs }) => {
    const n = xs.length;
    const mean = n ? xs.reduce((s, x) => s + x, 0) / n : NaN;
    const sd = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
    return { ...keys, mean, se: n ? sd / Math.sqrt(n) : NaN, n };
  }));
}

/** Rows of a summary table where `column` equals `value`, sorted by `sortBy`. */
export function where(table: Table, column: string, value: unknown, sortBy = 'layer'): Array<Record<string, number & string>> {
  return (table.objects() as Array<Record<string, number & string>>).filter((r) => r[column] === value).sort((a, b) => a[sortBy] - b[sortBy]);
}
