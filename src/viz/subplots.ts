// Several figures side by side in one (ROME shows the residual, MLP and attention heatmaps of a
// prompt in a row): each figure's traces move onto their own axes pair, placed on a grid.
import { baseLayout, CommonOptions, Figure, Layout, plotlyText, Trace } from './figure';

export interface SubplotOptions extends CommonOptions {
  /** Figures per row (default: all in one row). */
  cols?: number;
  /** A title above each panel (default: each figure's own title). */
  titles?: string[];
  /** Horizontal gap between panels, a fraction of the width (default 0.06; with colour bars 0.1, or 0.2 when token labels differ). */
  hspace?: number;
  vspace?: number;
}

function span(i: number, n: number, gap: number): [number, number] {
  const w = (1 - gap * (n - 1)) / n;
  return [i * (w + gap), i * (w + gap) + w];
}

export function subplots(figs: Figure[], opts: SubplotOptions = {}): Figure {
  const cols = Math.max(1, Math.min(opts.cols ?? figs.length, figs.length));
  const rows = Math.ceil(figs.length / cols);
  const hasBars = figs.some((f) => f.data.some((t) => t.colorbar));
  // Heatmaps of one prompt share their token labels: show them once per row, leaving room for colour bars.
  const ticks = figs.map((f) => JSON.stringify(f.layout.yaxis?.ticktext ?? null));
  const sharedTokens = ticks[0] !== 'null' && ticks.every((t) => t === ticks[0]);
  const hspace = opts.hspace ?? (hasBars ? (sharedTokens ? 0.1 : 0.2) : 0.06);
  const vspace = opts.vspace ?? 0.12;
  const panelHeight = Math.max(...figs.map((f) => f.layout.height ?? 380));
  const layout: Layout = baseLayout({ ...opts, height: opts.height ?? panelHeight * rows });
  layout.annotations = [];
  layout.showlegend = figs.some((f) => f.layout.showlegend);
  const data = figs.flatMap((fig, i) => {
    const n = i === 0 ? '' : String(i + 1);
    const x = span(i % cols, cols, hspace);
    const y = span(rows - 1 - Math.floor(i / cols), rows, vspace); // row 0 at the top
    layout[`xaxis${n}`] = { ...fig.layout.xaxis, domain: x, anchor: `y${n}` };
    layout[`yaxis${n}`] = { ...fig.layout.yaxis, domain: y, anchor: `x${n}` };
    if (sharedTokens && i % cols > 0) layout[`yaxis${n}`].showticklabels = false;
    const title = opts.titles?.[i] ?? fig.layout.title?.text;
    if (title) {
      layout.annotations.push({
        text: opts.titles ? plotlyText(title) : title, x: (x[0] + x[1]) / 2, y: y[1], xref: 'paper', yref: 'paper',
        xanchor: 'center', yanchor: 'bottom', showarrow: false, font: { size: 13 },
      });
    }
    return fig.data.map((t) => {
      const moved: Trace = { ...t, xaxis: `x${n}`, yaxis: `y${n}` };
      if (t.colorbar) {
        // Beside its own panel; title on top, so it doesn't run into the next panel's token labels.
        const title = { ...t.colorbar.title, side: 'top' };
        moved.colorbar = { ...t.colorbar, title, x: x[1] + 0.01, xanchor: 'left', y: (y[0] + y[1]) / 2, yanchor: 'middle', len: y[1] - y[0] };
      }
      return moved;
    });
  });
  if (layout.annotations.length) layout.margin.t = Math.max(layout.margin.t, 50);
  return { data, layout };
}
