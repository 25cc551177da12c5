// Figures in a notebook, offline, as one output with two representations:
// - application/vnd.plotly.v1+json, the figure's JSON: JupyterLab draws it with the jupyterlab-plotly
//   renderer (the Python `plotly` package in the project's Jupyter, kernel-config/requirements.txt),
//   which carries plotly.js itself, so a figure renders after reopening the page, in a second
//   notebook on the same kernel and after a kernel restart. Nothing of plotly.js is in the notebook.
// - text/html, a small fallback for front ends without that renderer (nbconvert's HTML export, the
//   classic notebook): a div and a script that draws with window.Plotly, loading it first from the
//   server's static files when the page has none (the classic notebook serves
//   node_modules/plotly.js-dist-min as /static/, see kernel-config/jupyter/jupyter_notebook_config.py;
//   scripts/run_notebooks.py puts plotly.js into the exported HTML once).
import * as fs from 'fs';
import { Figure } from './figure';
import { display, MimeBundle } from './tslab';

export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';
/** Where the fallback looks for plotly.js on a Jupyter server, relative to its base URL. */
export const PLOTLY_STATIC_PATH = 'static/plotly.min.js';

/** `<script>` with the whole plotly.js bundle (defines window.Plotly; it has no AMD branch). For HTML exports. */
export function plotlyScript(): string {
  const src = fs.readFileSync(require.resolve('plotly.js-dist-min'), 'utf8');
  return `<script type="text/javascript">${src.replace(/<\/script/gi, '<\\/script')}</script>`;
}

let divCounter = 0;

/**
 * The div and script that draw one figure without JupyterLab's renderer. The script waits for the
 * div to be attached (front ends render outputs before inserting them) and for window.Plotly,
 * which it loads once from the server's static files if the page lacks it; after ~20 s it says so.
 */
export function figureHtml(fig: Figure, id = `factlens-plot-${Date.now().toString(36)}-${divCounter++}`): string {
  const height = typeof fig.layout.height === 'number' ? `${fig.layout.height}px` : '420px';
  const json = JSON.stringify({ data: fig.data, layout: fig.layout }).replace(/</g, '\\u003c');
  const script = `(function () {
  var fig = ${json}, tries = 0;
  function load() {
    if (window.Plotly || document.getElementById('factlens-plotly-js')) return;
    var base = (document.body && document.body.getAttribute('data-base-url')) || '/';
    var s = document.createElement('script');
    s.id = 'factlens-plotly-js';
    s.src = base.replace(/\\/?$/, '/') + ${JSON.stringify(PLOTLY_STATIC_PATH)};
    document.head.appendChild(s);
  }
  function draw() {
    var el = document.getElementById(${JSON.stringify(id)});
    if (window.Plotly && el && el.isConnected) {
      window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
      return;
    }
    if (el && el.isConnected) load();
    if (++tries < 200) setTimeout(draw, 100);
    else if (el) el.textContent = 'plotly.js could not be loaded: open the notebook in JupyterLab (npm run lab)';
  }
  draw();
})();`;
  return `<div id="${id}" class="factlens-plot" style="width:100%;height:${height}"></div>\n<script type="text/javascript">${script}</script>`;
}

/** The output of one figure: plotly JSON for JupyterLab, the HTML fallback, and a text line. */
export function figureBundle(fig: Figure): MimeBundle {
  const title = fig.layout.title?.text ?? '';
  return {
    [PLOTLY_MIME]: { data: fig.data, layout: fig.layout },
    'text/html': figureHtml(fig),
    'text/plain': `<figure ${JSON.stringify(title)}: ${fig.data.length} trace(s)>`,
  };
}

/**
 * Shows a figure in the notebook. Outside a notebook, prints a one-line summary. Returns nothing, so
 * that tslab does not also print the spec as the cell's value.
 */
export function showFigure(fig: Figure): void {
  const bundle = figureBundle(fig);
  if (!display(bundle)) console.log(bundle['text/plain']);
}
