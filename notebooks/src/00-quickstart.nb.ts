// Source of notebooks/00-quickstart.ipynb: edit this file, then `npm run build-notebooks`.

// %% [markdown]
// # factlens quickstart
//
// This notebook runs in JupyterLab with the TypeScript kernel (tslab). It imports the library
// straight from `../src`. For now it exercises only the display layer: an arquero table, a line
// chart and a ROME-style heatmap, each computed in the cells below.

// %%
import * as aq from 'arquero';
import { heatmap, lineChart, markdown, progress, showFigure, showTable } from '../src/viz';

// %% [markdown]
// ## A table and a line chart
// softplus(x) = log(1 + eˣ) and the logistic sigmoid σ(x) = 1 / (1 + e⁻ˣ), the two nonlinearities of
// Mamba's Δ projection and SiLU gate. σ is the derivative of softplus.

// %%
const xs = Array.from({ length: 41 }, (_, i) => -4 + i * 0.2);
const curves = aq.table({
  x: xs,
  softplus: xs.map((x) => Math.log1p(Math.exp(x))),
  sigmoid: xs.map((x) => 1 / (1 + Math.exp(-x))),
});
showTable(curves, { limit: 6, title: 'softplus and sigmoid' });
showFigure(lineChart(curves, { x: 'x', y: ['softplus', 'sigmoid'], yTitle: 'f(x)', title: 'softplus and its derivative' }));

// %% [markdown]
// ## A heatmap in ROME's layout
// How long does a linear recurrence hₜ = a·hₜ₋₁ + (1 − a)·xₜ remember the subject? Feed it xₜ = 1 on
// the subject's tokens and 0 elsewhere, for decay rates a = 1 − 2⁻ᵏ (one column per k). Rows are the
// prompt's tokens, subject tokens marked `*`.

// %%
const tokens = ['The', ' Eiff', 'el', ' Tower', ' is', ' located', ' in', ' the', ' city', ' of'];
const subject = [1, 2, 3];
const ks = Array.from({ length: 8 }, (_, k) => k + 1);
const bar = progress(ks.length, 'decay rates');
const memory = tokens.map(() => ks.map(() => 0)); // [token][k]
ks.forEach((k, j) => {
  const a = 1 - 2 ** -k;
  let h = 0;
  tokens.forEach((_, t) => {
    h = a * h + (1 - a) * (subject.includes(t) ? 1 : 0);
    memory[t][j] = h;
  });
  bar.tick();
});
bar.done();
showFigure(heatmap({ values: memory, tokens, subject, layers: ks, kind: 'ssm', metric: 'hₜ', xTitle: 'k (a = 1 − 2⁻ᵏ)', title: 'Subject memory of a linear recurrence' }));

// %%
const last = memory[tokens.length - 1];
const best = ks[last.indexOf(Math.max(...last))];
markdown(`At the last token the recurrence keeps the most of the subject with k = ${best} (hₜ = ${Math.max(...last).toFixed(3)}).`);
