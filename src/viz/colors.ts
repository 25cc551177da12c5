// Colour conventions. ROME's causal-tracing figures use one sequential scale per kind of state
// (matplotlib's Purples for the residual stream, Greens for MLP, Reds for attention); the Mamba paper
// adds the SSM output s (Reds), the gate g (Greens) and the block output o (Blues). Differences use a
// diverging RdBu centred on 0. Stops are ColorBrewer's, written out because plotly.js has no
// "Purples" and its named scales run dark-to-light for some names.

/** What a heatmap shows: which state was restored/patched, or a signed difference. */
export type StateKind = 'residual' | 'ssm' | 'gate' | 'out' | 'mlp' | 'attn' | 'diff';

export type Colorscale = Array<[number, string]>;

function stops(colors: string[]): Colorscale {
  return colors.map((c, i) => [i / (colors.length - 1), c]);
}

export const COLOR_SCALES = {
  Purples: stops(['#fcfbfd', '#efedf5', '#dadaeb', '#bcbddc', '#9e9ac8', '#807dba', '#6a51a3', '#54278f', '#3f007d']),
  Reds: stops(['#fff5f0', '#fee0d2', '#fcbba1', '#fc9272', '#fb6a4a', '#ef3b2c', '#cb181d', '#a50f15', '#67000d']),
  Greens: stops(['#f7fcf5', '#e5f5e0', '#c7e9c0', '#a1d99b', '#74c476', '#41ab5d', '#238b45', '#006d2c', '#00441b']),
  Blues: stops(['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b']),
  // Negative red, positive blue, white at the midpoint (matplotlib's RdBu).
  RdBu: stops(['#67001f', '#b2182b', '#d6604d', '#f4a582', '#fddbc7', '#f7f7f7', '#d1e5f0', '#92c5de', '#4393c3', '#2166ac', '#053061']),
};

export type ScaleName = keyof typeof COLOR_SCALES;

export const KIND_SCALE: Record<StateKind, ScaleName> = {
  residual: 'Purples',
  ssm: 'Reds',
  gate: 'Greens',
  out: 'Blues',
  mlp: 'Greens',
  attn: 'Reds',
  diff: 'RdBu',
};

/** Series colours for line and bar charts (d3's category10, plotly's default order). */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** '#1f77b4' at alpha 0.2 -> 'rgba(31,119,180,0.2)', for error bands under a line. */
export function withAlpha(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}
