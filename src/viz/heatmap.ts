// Causal-tracing heatmaps in ROME's conventions: one row per prompt token, top to bottom in prompt
// order, subject tokens labelled with a trailing '*'; one column per layer; the colour scale says
// which kind of state was restored; the colour bar is titled with the metric.
import { FactlensError } from '../errors';
import { COLOR_SCALES, KIND_SCALE, StateKind } from './colors';
import { baseLayout, CommonOptions, Figure, plotlyText } from './figure';
import { column, isTable, rowsOf, TableLike } from './table-like';

export interface HeatmapOptions extends CommonOptions {
  /** values[pos][layer]; or give `table` instead. */
  values?: ArrayLike<number>[];
  /** Long-format table with columns layer, pos, token and `valueColumn` (optionally a boolean `subject`). */
  table?: TableLike;
  valueColumn?: string;
  /** Prompt tokens, one per row (decoded text). */
  tokens?: string[];
  /** Layer numbers of the columns (default 0..L-1). */
  layers?: number[];
  /** Positions of subject tokens, or `subjectRange` [start, end) as ROME's code gives it. */
  subject?: number[];
  subjectRange?: [number, number];
  /** Picks the colour scale (default 'residual'). */
  kind?: StateKind;
  /** Colour bar title, e.g. 'p(Seattle)' or 'AIE'. */
  metric?: string;
  zmin?: number;
  zmax?: number;
  xTitle?: string;
}

interface Grid { z: number[][]; tokens: string[]; layers: number[]; subject: Set<number> }

function fromTable(t: TableLike, valueColumn: string): Grid {
  const rows = rowsOf(t);
  const cols = t.columnNames();
  const layerCol = column(rows, cols, 'layer').map(Number);
  const posCol = column(rows, cols, 'pos').map(Number);
  const tokenCol = column(rows, cols, 'token').map(String);
  const valueCol = column(rows, cols, valueColumn).map(Number);
  const subjectCol = cols.includes('subject') ? rows.map((r) => Boolean(r.subject)) : null;
  const layers = Array.from(new Set(layerCol)).sort((a, b) => a - b);
  const nPos = Math.max(...posCol) + 1;
  const z = Array.from({ length: nPos }, () => layers.map(() => NaN));
  const tokens: string[] = new Array(nPos).fill('');
  const subject = new Set<number>();
  rows.forEach((_, i) => {
    z[posCol[i]][layers.indexOf(layerCol[i])] = valueCol[i];
    tokens[posCol[i]] = tokenCol[i];
    if (subjectCol?.[i]) subject.add(posCol[i]);
  });
  return { z, tokens, layers, subject };
}

function grid(opts: HeatmapOptions): Grid {
  let g: Grid;
  if (opts.table) {
    if (!isTable(opts.table)) throw new FactlensError('heatmap: `table` is not an arquero table');
    g = fromTable(opts.table, opts.valueColumn ?? 'value');
  } else if (opts.values) {
    const z = opts.values.map((row) => Array.from(row));
    const nLayers = z[0]?.length ?? 0;
    g = { z, tokens: z.map((_, i) => String(i)), layers: Array.from({ length: nLayers }, (_, i) => i), subject: new Set() };
  } else {
    throw new FactlensError('heatmap: give `values` (rows = tokens, columns = layers) or a long `table`');
  }
  if (opts.tokens) {
    if (opts.tokens.length !== g.z.length) {
      throw new FactlensError(`heatmap: ${opts.tokens.length} tokens for ${g.z.length} rows of values`);
    }
    g.tokens = opts.tokens;
  }
  if (opts.layers) g.layers = opts.layers;
  for (const p of opts.subject ?? []) g.subject.add(p);
  if (opts.subjectRange) for (let p = opts.subjectRange[0]; p < opts.subjectRange[1]; p++) g.subject.add(p);
  return g;
}

/** Row labels: the token text, with '*' after subject tokens (ROME's marking). */
export function tokenLabels(tokens: string[], subject: Iterable<number>): string[] {
  const s = new Set(subject);
  return tokens.map((t, i) => plotlyText(t) + (s.has(i) ? '*' : ''));
}

export function heatmap(opts: HeatmapOptions): Figure {
  const g = grid(opts);
  const kind = opts.kind ?? 'residual';
  const labels = tokenLabels(g.tokens, g.subject);
  const metric = opts.metric ?? 'value';
  const positions = labels.map((_, i) => i); // numeric rows: repeated tokens must not merge
  const trace = {
    type: 'heatmap',
    z: g.z,
    x: g.layers,
    y: positions,
    text: g.z.map((row, i) => row.map(() => labels[i])),
    hovertemplate: `token %{text}<br>layer %{x}<br>${plotlyText(metric)} = %{z:.4g}<extra></extra>`,
    colorscale: COLOR_SCALES[KIND_SCALE[kind]],
    colorbar: { title: { text: plotlyText(metric), side: 'right' }, thickness: 14 },
    zmin: opts.zmin,
    zmax: opts.zmax,
    zmid: kind === 'diff' ? 0 : undefined,
    xgap: 1,
    ygap: 1,
  };
  const layout = baseLayout({ ...opts, height: opts.height ?? 90 + 24 * labels.length });
  layout.xaxis = { title: { text: opts.xTitle ?? 'layer' }, dtick: g.layers.length > 24 ? 5 : 1, showgrid: false, zeroline: false };
  layout.yaxis = {
    tickmode: 'array', tickvals: positions, ticktext: labels,
    autorange: 'reversed', showgrid: false, zeroline: false, automargin: true,
  };
  // JSON round trip: drops unset options and turns NaN (missing cells) into null, a gap for plotly.
  return { data: [JSON.parse(JSON.stringify(trace))], layout };
}
