// Line charts (with optional ± error bands, e.g. standard errors over prompts) and grouped bar charts.
import { PALETTE, withAlpha } from './colors';
import { baseLayout, CommonOptions, Figure, plotlyText, Trace } from './figure';
import { Columns, Series, toSeries } from './series';
import { TableLike } from './table-like';

export interface ChartOptions extends CommonOptions, Columns {
  xTitle?: string;
  yTitle?: string;
  yRange?: [number, number];
  /** Line charts: draw markers on the points (default true when a series has at most 40 points). */
  markers?: boolean;
}

function axes(opts: ChartOptions, fig: Figure): Figure {
  fig.layout.xaxis = { title: { text: plotlyText(opts.xTitle ?? opts.x ?? '') }, showline: true, linecolor: '#444', gridcolor: '#eee', zeroline: false };
  fig.layout.yaxis = { title: { text: plotlyText(opts.yTitle ?? (typeof opts.y === 'string' ? opts.y : '')) }, showline: true, linecolor: '#444', gridcolor: '#eee', zeroline: false };
  if (opts.yRange) fig.layout.yaxis.range = opts.yRange;
  fig.layout.legend = { orientation: 'v' };
  return fig;
}

/** A closed polygon y-err .. y+err, filled in the series colour: the error band under a line. */
function band(s: Series, color: string): Trace {
  const x = Array.from(s.x);
  const y = Array.from(s.y);
  const e = Array.from(s.err as ArrayLike<number>);
  return {
    type: 'scatter', mode: 'lines', fill: 'toself', fillcolor: withAlpha(color, 0.2), line: { width: 0, color },
    x: [...x, ...x.slice().reverse()],
    y: [...y.map((v, i) => v + e[i]), ...y.map((v, i) => v - e[i]).reverse()],
    hoverinfo: 'skip', showlegend: false, name: `${s.name ?? ''} ± err`, legendgroup: s.name,
  };
}

export function lineChart(input: TableLike | Series[], opts: ChartOptions = {}): Figure {
  const series = toSeries(input, opts, 'lineChart');
  const data: Trace[] = [];
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    if (s.err) data.push(band(s, color));
    const markers = opts.markers ?? s.x.length <= 40;
    data.push({
      type: 'scatter', mode: markers ? 'lines+markers' : 'lines', name: plotlyText(s.name ?? `series ${i}`),
      x: Array.from(s.x), y: Array.from(s.y), line: { color, width: 2 }, marker: { size: 5 }, legendgroup: s.name,
    });
  });
  const fig = { data, layout: baseLayout({ ...opts, height: opts.height ?? 380 }) };
  fig.layout.showlegend = series.length > 1;
  return axes(opts, fig);
}

export function barChart(input: TableLike | Series[], opts: ChartOptions = {}): Figure {
  const series = toSeries(input, opts, 'barChart');
  const data: Trace[] = series.map((s, i) => ({
    type: 'bar', name: plotlyText(s.name ?? `series ${i}`),
    x: Array.from(s.x), y: Array.from(s.y), marker: { color: PALETTE[i % PALETTE.length] },
    error_y: s.err ? { type: 'data', array: Array.from(s.err), visible: true, color: '#333' } : undefined,
  }));
  const fig = { data: JSON.parse(JSON.stringify(data)) as Trace[], layout: baseLayout({ ...opts, height: opts.height ?? 380 }) };
  fig.layout.barmode = 'group';
  fig.layout.showlegend = series.length > 1;
  axes(opts, fig).layout.xaxis.type = 'category'; // layer numbers etc. are labels here, not a scale
  return fig;
}
