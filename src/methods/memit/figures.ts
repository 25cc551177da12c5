/**
 * The MEMIT paper's scaling figure: ES / PS / NS / S against the number of facts edited at once, one
 * line per (model, method). Batch sizes are categories (1, 10, 100, … evenly spaced, like a log axis).
 */
import { Figure } from '../../viz/figure';
import { lineChart } from '../../viz/charts';
import { subplots } from '../../viz/subplots';
import type { ScalingRow } from './scaling';

const METRICS = ['ES', 'PS', 'NS', 'S'] as const;
const TITLES: Record<string, string> = { ES: 'Efficacy (ES)', PS: 'Generalisation (PS)', NS: 'Specificity (NS)', S: 'Score (S)' };

export function scalingFigure(rows: ScalingRow[], opts: { title?: string; height?: number } = {}): Figure {
  const label = (r: ScalingRow) => `${r.model} ${r.matrix} ${r.method}`;
  const groups = [...new Set(rows.map(label))];
  const figs = METRICS.map((metric, panel) => {
    const series = groups.map((g) => {
      const sel = rows.filter((r) => label(r) === g).sort((a, b) => a.batchSize - b.batchSize);
      return { name: g, x: sel.map((r) => String(r.batchSize)), y: sel.map((r) => r[metric]) };
    });
    const fig = lineChart(series, { title: TITLES[metric], xTitle: 'edits at once', yTitle: panel === 0 ? 'success (%)' : '', yRange: [0, 102] });
    fig.data.forEach((t) => (t.showlegend = panel === 0));
    return fig;
  });
  const fig = subplots(figs, { cols: 4, title: opts.title, height: opts.height ?? 360 });
  fig.layout.showlegend = true;
  fig.layout.legend = { orientation: 'h', y: -0.3 };
  return fig;
}
