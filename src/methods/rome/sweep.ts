/**
 * Layer sweeps (the paper's "ROME performance" figure, §3.6): edit every record at each layer of
 * each editable matrix and summarise ES / PS / NS / S per (matrix, layer). Statistics for all
 * sites come from one pass over the corpus. `sweepFigure` draws the four panels with the paper's
 * colours (W_a red, W_g green, W_o blue, Pythia W_down dark teal).
 */
import type { CounterFactRecord } from '../../data/counterfact';
import type { Model } from '../../runtime/model';
import { Figure } from '../../viz/figure';
import { lineChart } from '../../viz/charts';
import { subplots } from '../../viz/subplots';
import { progress as progressBar } from '../../viz/progress';
import { evaluateEdits, EvaluateOptions, EvaluationSummary, CaseResult } from './evaluate';
import { EDIT_MATRICES, editSite, EditMatrix, MATRIX_COLORS, parseMatrix } from './sites';
import { SecondMoment, secondMoments, StatsOptions } from './stats';

export interface LayerSweepOptions extends Omit<EvaluateOptions, 'layer' | 'matrix' | 'stats'> {
  /** Layers to edit (default all). */
  layers?: number[];
  /** Matrices (default every editable matrix of the architecture). */
  matrices?: Array<EditMatrix | string>;
  stats?: StatsOptions;
}

export interface SweepRow extends EvaluationSummary {
  arch: string;
}

export async function romeLayerSweep(model: Model, records: CounterFactRecord[], opts: LayerSweepOptions = {}): Promise<{ rows: SweepRow[]; cases: CaseResult[] }> {
  const layers = opts.layers ?? Array.from({ length: model.nLayers }, (_, l) => l);
  const matrices = (opts.matrices ?? EDIT_MATRICES[model.arch]).map(parseMatrix);
  const sites = matrices.flatMap((m) => layers.map((l) => editSite(model, l, m)));
  const useC = opts.mom2Adjustment !== false;
  const stats: SecondMoment[] = useC ? await secondMoments(opts.baseModel ?? model, sites, opts.stats ?? {}) : [];
  const rows: SweepRow[] = [];
  const cases: CaseResult[] = [];
  const bar = opts.progress === false ? null : progressBar(sites.length * records.length, `ROME layer sweep on ${model.name}`);
  try {
    for (const [i, site] of sites.entries()) {
      const res = await evaluateEdits(model, records, {
        ...opts, layer: site.layer, matrix: site.matrix, stats: useC ? stats[i] : undefined, progress: false,
        onCase: (c) => { bar?.tick(); opts.onCase?.(c); },
      });
      rows.push({ ...res.summary, arch: model.arch });
      cases.push(...res.cases);
    }
  } finally {
    bar?.done();
  }
  return { rows, cases };
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
