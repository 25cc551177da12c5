/**
 * Summaries and figures of LRE sweeps in the paper's style: layer sweeps
 * with faithfulness (blue) and causality (orange), mean ± std over trials;
 * per-relation bars of the best-layer faithfulness with a red tick at the
 * majority-object baseline.
 */
import { barChart, lineChart, subplots } from '../../viz';
import type { Figure, Trace } from '../../viz';
import { SweepRow } from './sweep';

export interface LayerPoint {
  model: string;
  relation: string;
  layer: string;
  layerIndex: number;
  trials: number;
  faithfulness: number;
  faithfulnessStd: number;
  causality: number;
  causalityStd: number;
  beta: number;
  rank: number;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Population standard deviation (0 for a single trial). */
function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
}

/** Mean ± std over trials per (model, relation, layer), in layer order. */
export function layerCurves(rows: SweepRow[]): LayerPoint[] {
  const groups = new Map<string, SweepRow[]>();
  for (const r of rows) {
    const key = `${r.model}\u0000${r.relation}\u0000${r.layerIndex}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()]
    .map((g) => ({
      model: g[0].model,
      relation: g[0].relation,
      layer: g[0].layer,
      layerIndex: g[0].layerIndex,
      trials: g.length,
      faithfulness: mean(g.map((r) => r.faithfulness)),
      faithfulnessStd: std(g.map((r) => r.faithfulness)),
      causality: mean(g.map((r) => r.causality)),
      causalityStd: std(g.map((r) => r.causality)),
      beta: mean(g.map((r) => r.beta)),
      rank: mean(g.map((r) => r.rank)),
    }))
    .sort((a, b) => (a.model + a.relation).localeCompare(b.model + b.relation) || a.layerIndex - b.layerIndex);
}

export interface RelationBest {
  model: string;
  relation: string;
  /** The layer with the best mean faithfulness, its mean and std over trials. */
  layer: string;
  faithfulness: number;
  faithfulnessStd: number;
  /** Causality at that layer, and the best causality over layers. */
  causalityAtLayer: number;
  bestCausality: number;
  bestCausalityLayer: string;
  baseline: number;
  /** Decoding z itself: the ceiling of faithfulness (below 1 for Mamba, whose z skips the last block). */
  zDecode: number;
  nTest: number;
  trials: number;
}

/** Per (model, relation): the best layer's faithfulness (the paper's bar) and causality. */
export function relationSummary(rows: SweepRow[]): RelationBest[] {
  const curves = layerCurves(rows);
  const keys = [...new Set(curves.map((c) => `${c.model}\u0000${c.relation}`))];
  return keys.map((key) => {
    const cs = curves.filter((c) => `${c.model}\u0000${c.relation}` === key);
    const best = cs.reduce((a, b) => (b.faithfulness > a.faithfulness ? b : a));
    const withC = cs.filter((c) => !Number.isNaN(c.causality));
    const bestC = withC.length ? withC.reduce((a, b) => (b.causality > a.causality ? b : a)) : null;
    const rs = rows.filter((r) => `${r.model}\u0000${r.relation}` === key && r.layerIndex === best.layerIndex);
    return {
      model: best.model,
      relation: best.relation,
      layer: best.layer,
      faithfulness: best.faithfulness,
      faithfulnessStd: best.faithfulnessStd,
      causalityAtLayer: best.causality,
      bestCausality: bestC ? bestC.causality : NaN,
      bestCausalityLayer: bestC ? bestC.layer : '',
      baseline: mean(rs.map((r) => r.baseline)),
      zDecode: mean(rs.map((r) => r.zDecode)),
      nTest: mean(rs.map((r) => r.nTest)),
      trials: best.trials,
    };
  });
}

/** A relation id as the paper writes it ("person_plays_pro_sport" → "person plays pro sport"). */
export function relationTitle(id: string): string {
  return id.replace(/_/g, ' ');
}

/** One panel per relation: faithfulness (blue) and causality (orange) against the layer, ± std. */
export function sweepFigure(rows: SweepRow[], opts: { title?: string; cols?: number } = {}): Figure {
  const curves = layerCurves(rows);
  const relations = [...new Set(curves.map((c) => c.relation))];
  const panels = relations.map((rel) => {
    const cs = curves.filter((c) => c.relation === rel);
    const x = cs.map((c) => c.layer);
    const series = [{ name: 'faithfulness', x, y: cs.map((c) => c.faithfulness), err: cs.map((c) => c.faithfulnessStd) }];
    if (cs.some((c) => !Number.isNaN(c.causality))) series.push({ name: 'causality', x, y: cs.map((c) => c.causality), err: cs.map((c) => c.causalityStd) });
    return lineChart(series, { xTitle: 'layer', yTitle: 'score', yRange: [0, 1.05], title: relationTitle(rel) });
  });
  const fig = subplots(panels, { cols: Math.min(opts.cols ?? 4, panels.length), title: opts.title, height: 300 * Math.ceil(panels.length / Math.min(opts.cols ?? 4, panels.length)) });
  // One legend entry per metric, not per panel.
  const seen = new Set<string>();
  for (const t of fig.data) {
    const name = String(t.name ?? '');
    if (t.showlegend === false) continue;
    t.showlegend = !seen.has(name);
    seen.add(name);
  }
  return fig;
}

/** Per-relation bars (best-layer faithfulness ± std), one panel per model, red ticks at the baseline. */
export function relationBars(summary: RelationBest[], models: string[], opts: { title?: string; order?: string[] } = {}): Figure {
  const order = opts.order ?? sortedRelations(summary, models[0]);
  const panels = models.map((m) => {
    const by = new Map(summary.filter((s) => s.model === m).map((s) => [s.relation, s]));
    const rels = order.filter((r) => by.has(r));
    const x = rels.map(relationTitle);
    const fig = barChart([{ name: 'faithfulness', x, y: rels.map((r) => by.get(r)!.faithfulness), err: rels.map((r) => by.get(r)!.faithfulnessStd) }], {
      yTitle: 'faithfulness', yRange: [0, 1.05], title: m,
    });
    const tick: Trace = {
      type: 'scatter', mode: 'markers', name: 'majority baseline', x, y: rels.map((r) => by.get(r)!.baseline),
      marker: { symbol: 'line-ew-open', size: 22, color: '#d62728', line: { width: 3, color: '#d62728' } },
    };
    fig.data.push(tick);
    return fig;
  });
  const fig = subplots(panels, { cols: 1, title: opts.title, height: 380 * panels.length });
  const seen = new Set<string>();
  for (const t of fig.data) {
    const name = String(t.name ?? '');
    t.showlegend = !seen.has(name);
    seen.add(name);
  }
  return fig;
}

/** Relations by decreasing faithfulness of one model (the paper sorts by Mamba). */
export function sortedRelations(summary: RelationBest[], model: string): string[] {
  const mine = summary.filter((s) => s.model === model).sort((a, b) => b.faithfulness - a.faithfulness).map((s) => s.relation);
  const rest = [...new Set(summary.map((s) => s.relation))].filter((r) => !mine.includes(r));
  return [...mine, ...rest];
}
