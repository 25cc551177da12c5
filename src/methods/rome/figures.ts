/**
 * Figures of ROME runs: the v* loss trace, and the layer sweep drawn like the paper's "ROME
 * performance" figure (ES / PS / NS / S vs layer; W_a red, W_g green, W_o blue, Pythia W_down dark teal).
 */
import { Figure } from '../../viz/figure';
import { lineChart } from '../../viz/charts';
import { subplots } from '../../viz/subplots';
import { EditMatrix, MATRIX_COLORS } from './sites';
import type { SweepRow } from './sweep';
import type { ValueStep } from './value';

/** Loss terms per optimisation step, one panel per run (e.g. one per model). */
export function lossTraceFigure(runs: Array<{ label: string; trace: ValueStep[] }>, opts: { title?: string } = {}): Figure {
  const figs = runs.map(({ label, trace }) => {
    const x = trace.map((s) => s.step);
    return lineChart([
      { name: 'total', x, y: trace.map((s) => s.loss) },
      { name: 'NLL', x, y: trace.map((s) => s.nll) },
      { name: 'KL (×0.0625)', x, y: trace.map((s) => s.kl) },
      { name: 'weight decay', x, y: trace.map((s) => s.weightDecay) },
    ], { title: label, xTitle: 'step', yTitle: 'loss' });
  });
  figs.slice(1).forEach((f) => f.data.forEach((t) => (t.showlegend = false)));
  return subplots(figs, { title: opts.title, height: 340 });
}

const METRICS = ['ES', 'PS', 'NS', 'S'] as const;
const TITLES: Record<string, string> = { ES: 'Efficacy (ES)', PS: 'Generalisation (PS)', NS: 'Specificity (NS)', S: 'Score (S)' };

/** Four panels (ES, PS, NS, S vs layer), one line per (model, matrix), in the paper's colours. */
export function sweepFigure(rows: SweepRow[], opts: { title?: string; height?: number } = {}): Figure {
  const groups = [...new Set(rows.map((r) => `${r.model}|${r.matrix}`))];
  const figs = METRICS.map((metric, panel) => {
    const series = groups.map((g) => {
      const sel = rows.filter((r) => `${r.model}|${r.matrix}` === g).sort((a, b) => a.layer - b.layer);
      const [model, matrix] = g.split('|');
      return { name: groups.some((h) => !h.startsWith(model + '|')) ? `${model} ${matrix}` : matrix, x: sel.map((r) => r.layer), y: sel.map((r) => r[metric]) };
    });
    const fig = lineChart(series, { title: TITLES[metric], xTitle: 'layer', yTitle: panel === 0 ? 'success (%)' : '', yRange: [0, 102] });
    const lines = fig.data.filter((t) => t.type === 'scatter');
    lines.forEach((t, i) => {
      const matrix = groups[i].split('|')[1] as EditMatrix;
      t.line = { ...t.line, color: MATRIX_COLORS[matrix] };
      t.marker = { ...t.marker, color: MATRIX_COLORS[matrix] };
      t.showlegend = panel === 0;
      t.legendgroup = groups[i];
    });
    return fig;
  });
  const fig = subplots(figs, { cols: 4, title: opts.title, height: opts.height ?? 340 });
  fig.layout.showlegend = true;
  fig.layout.legend = { orientation: 'h', y: -0.25 };
  return fig;
}
