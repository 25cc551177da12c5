// A figure is a plain plotly.js spec: JSON-serialisable, so tests assert on it and the notebook
// attaches it verbatim as application/vnd.plotly.v1+json.

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Trace = { [key: string]: any };
export type Layout = { [key: string]: any };

export interface Figure {
  data: Trace[];
  layout: Layout;
}

/** Options every chart takes. */
export interface CommonOptions {
  title?: string;
  width?: number;
  height?: number;
}

/** Layout fields shared by all charts: white background, compact margins, optional title and size. */
export function baseLayout(opts: CommonOptions): Layout {
  const layout: Layout = {
    font: { family: 'Helvetica, Arial, sans-serif', size: 12 },
    plot_bgcolor: 'white',
    paper_bgcolor: 'white',
    margin: { l: 70, r: 30, t: opts.title ? 50 : 20, b: 50 },
  };
  if (opts.title) layout.title = { text: opts.title, x: 0.5, xanchor: 'center' };
  if (opts.width) layout.width = opts.width;
  if (opts.height) layout.height = opts.height;
  return layout;
}

/** Escapes text for plotly's labels, which parse a small HTML subset (so a token like <|endoftext|> would vanish). */
export function plotlyText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, '↵');
}
