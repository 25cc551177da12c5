/**
 * Figures in the paper's style: knockout relative-change curves with standard-error bands (one line per
 * source set, x = window centre) and path-blocking grouped bars per layer (recovery and each pinned
 * component side by side, paper colours: recovery purple, s red, g green, o blue).
 */
import * as aq from 'arquero';
import { barChart, lineChart, subplots, Figure, Series } from '../../viz';
import type { Table } from './mamba-knockout';
import { where } from './summary';

const COLORS: Record<string, string> = {
  recovery: '#6a51a3', 's blocked': '#cb181d', 'g blocked': '#238b45', 'o blocked': '#2171b5',
  'MLP blocked': '#238b45', 'attention blocked': '#cb181d',
  subject: '#1f77b4', subj_last: '#9467bd', non_subject: '#ff7f0e', prompt_last: '#2ca02c',
};

function seriesOf(summary: Table, column: string, values: string[]): Series[] {
  return values.map((v) => {
    const rows = where(summary, column, v);
    return { name: v, x: rows.map((r) => r.layer), y: rows.map((r) => r.mean), err: rows.map((r) => r.se) };
  });
}

function recolor(fig: Figure, names: string[]): Figure {
  let i = 0;
  for (const t of fig.data) {
    if (t.showlegend === false) continue; // error bands are recoloured with their line below
    const c = COLORS[names[i++]];
    if (!c) continue;
    if (t.type === 'bar') t.marker = { ...t.marker, color: c };
    else t.line = { ...t.line, color: c };
  }
  for (let j = 0; j < fig.data.length; j++) {
    const t = fig.data[j];
    if (t.showlegend === false && fig.data[j + 1]) {
      const c = COLORS[String(fig.data[j + 1].name)];
      if (c) t.fillcolor = hexAlpha(c, 0.2);
    }
  }
  return fig;
}

function hexAlpha(hex: string, a: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
}

/** Relative change in p(o) per window centre, one line (± SE band) per source set. */
export function knockoutFigure(summary: Table, opts: { title?: string; sets?: string[]; height?: number } = {}): Figure {
  const sets = opts.sets ?? Array.from(new Set((summary.objects() as Array<{ set: string }>).map((r) => r.set)));
  const fig = lineChart(seriesOf(summary, 'set', sets), {
    title: opts.title, xTitle: 'center of the window of knocked-out layers', yTitle: 'relative change in p(o)', height: opts.height,
  });
  return recolor(fig, sets);
}

/** Mean IE per restored layer, one bar group per layer, one bar per pin. */
export function restorationFigure(summary: Table, opts: { title?: string; pins?: string[]; height?: number } = {}): Figure {
  const pins = opts.pins ?? Array.from(new Set((summary.objects() as Array<{ pin: string }>).map((r) => r.pin)));
  const fig = barChart(seriesOf(summary, 'pin', pins), { title: opts.title, xTitle: 'layer ℓ of the restored h_i^ℓ', yTitle: 'IE (relative recovery of p(o))', height: opts.height });
  return recolor(fig, pins);
}

/** The paper's two-panel path-blocking figure: (a) i = subject last, (b) i = prompt last, one legend. */
export function restorationPanels(summary: Table, opts: { title?: string; pins?: string[] } = {}): Figure {
  const rows = summary.objects() as Array<{ token: string }>;
  const panels = [['subject_last', '(a) i = subject last'], ['last', '(b) i = prompt last']]
    .filter(([token]) => rows.some((r) => r.token === token))
    .map(([token, label]) => restorationFigure(aq.from(rows.filter((r) => r.token === token)), { title: label, pins: opts.pins }));
  const fig = subplots(panels, { title: opts.title, cols: 1, vspace: 0.22, height: 340 * panels.length });
  const seen = new Set<string>();
  for (const t of fig.data) {
    if (seen.has(t.name)) t.showlegend = false;
    seen.add(t.name);
  }
  return fig;
}
