// Figures in a notebook, offline: plotly.js (node_modules/plotly.js-dist-min) is inlined into the
// first figure's output of a kernel (4.8 MB, once), and every figure is a div plus a Plotly.newPlot
// script. That is plain text/html, which JupyterLab, the classic notebook and nbconvert's HTML export
// all render; the same output also carries the figure's JSON as application/vnd.plotly.v1+json.
import * as fs from 'fs';
import { Figure } from './figure';
import { display } from './tslab';

// On globalThis, not in a module variable: tslab re-evaluates a module when its file changes.
const INLINED = '__factlensPlotlyInlined';

export interface ShowOptions {
  /** Inline plotly.js into this output even if an earlier one did (e.g. after clearing outputs). */
  inlinePlotly?: boolean;
}

/** `<script>` with the whole plotly.js bundle (defines window.Plotly; it has no AMD branch). */
export function plotlyScript(): string {
  const src = fs.readFileSync(require.resolve('plotly.js-dist-min'), 'utf8');
  return `<script type="text/javascript">${src.replace(/<\/script/gi, '<\\/script')}</script>`;
}

let divCounter = 0;

/**
 * The div and script that draw one figure. The script waits for window.Plotly (the bundle may be
 * in an earlier output still loading) and for the div to be attached (JupyterLab renders outputs
 * before inserting them), then gives up with a message after ~20 s.
 */
export function figureHtml(fig: Figure, id = `factlens-plot-${Date.now().toString(36)}-${divCounter++}`): string {
  const height = typeof fig.layout.height === 'number' ? `${fig.layout.height}px` : '420px';
  const json = JSON.stringify({ data: fig.data, layout: fig.layout }).replace(/</g, '\\u003c');
  const script = `(function () {
  var fig = ${json}, tries = 0;
  function draw() {
    var el = document.getElementById(${JSON.stringify(id)});
    if (window.Plotly && el && el.isConnected) {
      window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
    } else if (++tries < 200) {
      setTimeout(draw, 100);
    } else if (el) {
      el.textContent = 'plotly.js is not loaded: re-run the first cell that shows a figure, or showFigure(fig, { inlinePlotly: true })';
    }
  }
  draw();
})();`;
  return `<div id="${id}" class="factlens-plot" style="width:100%;height:${height}"></div>\n<script type="text/javascript">${script}</script>`;
}

/**
 * Shows a figure in the notebook. Outside a notebook, prints a one-line summary. Returns nothing, so
 * that tslab does not also print the spec as the cell's value.
 */
export function showFigure(fig: Figure, opts: ShowOptions = {}): void {
  const g = globalThis as Record<string, unknown>;
  const first = opts.inlinePlotly || !g[INLINED];
  const title = fig.layout.title?.text ?? '';
  const bundle = {
    'text/html': (first ? plotlyScript() + '\n' : '') + figureHtml(fig),
    'application/vnd.plotly.v1+json': { data: fig.data, layout: fig.layout },
    'text/plain': `<figure ${JSON.stringify(title)}: ${fig.data.length} trace(s)>`,
  };
  if (display(bundle)) g[INLINED] = true;
  else console.log(bundle['text/plain']);
}
