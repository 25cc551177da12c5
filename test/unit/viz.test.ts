// The figure specs and table HTML of src/viz: what a notebook shows, checked as data.
import * as aq from 'arquero';
import { inspect } from 'util';
import { describe, expect, it, vi } from 'vitest';
import { FactlensError } from '../../src/errors';
import {
  barChart, COLOR_SCALES, figureHtml, heatmap, inTslab, lineChart, markdown, progress, showFigure, showTable,
  subplots, tableHtml, tableText, track,
} from '../../src/viz';

const tokens = ['The', ' Eiff', 'el', ' Tower', ' is', ' in'];
const values = tokens.map((_, t) => [0, 1, 2].map((l) => t * 10 + l)); // [pos][layer]

describe('heatmap (ROME conventions)', () => {
  const fig = heatmap({ values, tokens, subjectRange: [1, 4], kind: 'residual', metric: 'p(Paris)', zmin: 0, zmax: 1 });
  const trace = fig.data[0];

  it('puts layers on x and tokens on y, top to bottom in prompt order', () => {
    expect(trace.type).toBe('heatmap');
    expect(trace.x).toEqual([0, 1, 2]);
    expect(trace.y).toEqual([0, 1, 2, 3, 4, 5]);
    expect(trace.z[3]).toEqual([30, 31, 32]);
    expect(fig.layout.yaxis.autorange).toBe('reversed');
    expect(fig.layout.yaxis.ticktext).toEqual(['The', ' Eiff*', 'el*', ' Tower*', ' is', ' in']);
    expect(fig.layout.xaxis.title.text).toBe('layer');
  });

  it('titles the colour bar with the metric and uses the kind\'s scale', () => {
    expect(trace.colorbar.title.text).toBe('p(Paris)');
    expect(trace.colorscale).toEqual(COLOR_SCALES.Purples);
    expect([trace.zmin, trace.zmax]).toEqual([0, 1]);
    expect(trace.hovertemplate).toContain('%{z');
    expect(trace.text[2][0]).toBe('el*');
  });

  it('has one colour scale per state kind, RdBu centred on 0 for differences', () => {
    const scale = (kind: Parameters<typeof heatmap>[0]['kind']) => heatmap({ values, tokens, kind }).data[0];
    expect(scale('ssm').colorscale).toEqual(COLOR_SCALES.Reds);
    expect(scale('gate').colorscale).toEqual(COLOR_SCALES.Greens);
    expect(scale('out').colorscale).toEqual(COLOR_SCALES.Blues);
    expect(scale('mlp').colorscale).toEqual(COLOR_SCALES.Greens);
    expect(scale('attn').colorscale).toEqual(COLOR_SCALES.Reds);
    expect(scale('diff').colorscale).toEqual(COLOR_SCALES.RdBu);
    expect(scale('diff').zmid).toBe(0);
    expect(scale('residual').zmid).toBeUndefined();
    // Sequential scales run from near-white to dark.
    expect(COLOR_SCALES.Purples[0]).toEqual([0, '#fcfbfd']);
    expect(COLOR_SCALES.Purples[8]).toEqual([1, '#3f007d']);
  });

  it('keeps repeated tokens as separate rows and escapes markup', () => {
    const f = heatmap({ values: [[1], [2], [3]], tokens: [' the', '<|endoftext|>', ' the'] });
    expect(f.layout.yaxis.tickvals).toEqual([0, 1, 2]);
    expect(f.layout.yaxis.ticktext[1]).toBe('&lt;|endoftext|&gt;');
  });

  it('reads a long arquero table (layer, pos, token, value, subject)', () => {
    const rows = tokens.flatMap((tok, pos) => [0, 1, 2].map((layer) => ({ layer, pos, token: tok, score: pos * 10 + layer, subject: pos >= 1 && pos < 4 })));
    const f = heatmap({ table: aq.from(rows), valueColumn: 'score', kind: 'ssm', metric: 'AIE' });
    expect(f.data[0].z).toEqual(values);
    expect(f.layout.yaxis.ticktext).toEqual(fig.layout.yaxis.ticktext);
    expect(f.data[0].colorbar.title.text).toBe('AIE');
  });

  it('throws a FactlensError for bad input', () => {
    expect(() => heatmap({ values, tokens: ['a'] })).toThrow(FactlensError);
    expect(() => heatmap({ table: aq.from([{ layer: 0, pos: 0 }]) })).toThrow(/no column 'token'/);
  });

  it('is plain JSON', () => {
    expect(JSON.parse(JSON.stringify(fig))).toEqual(fig);
  });
});

describe('line and bar charts', () => {
  const t = aq.from([0, 1, 2, 0, 1, 2].map((layer, i) => ({ layer, model: i < 3 ? 'mamba' : 'pythia', acc: i / 10, se: 0.01 })));

  it('splits a table into one line per group, with ± error bands', () => {
    const fig = lineChart(t, { x: 'layer', y: 'acc', group: 'model', err: 'se', yTitle: 'accuracy' });
    const lines = fig.data.filter((d) => d.mode !== 'lines' || !d.fill);
    const bands = fig.data.filter((d) => d.fill === 'toself');
    expect(lines.map((d) => d.name)).toEqual(['mamba', 'pythia']);
    expect(lines[1].y).toEqual([0.3, 0.4, 0.5]);
    expect(bands).toHaveLength(2);
    expect(bands[0].x).toEqual([0, 1, 2, 2, 1, 0]);
    expect(bands[0].y[0]).toBeCloseTo(0.01);
    expect(bands[0].y[5]).toBeCloseTo(-0.01);
    expect(fig.layout.yaxis.title.text).toBe('accuracy');
    expect(fig.layout.xaxis.title.text).toBe('layer');
  });

  it('takes explicit series and several y columns', () => {
    const fig = lineChart([{ name: 'a', x: [1, 2], y: [3, 4] }]);
    expect(fig.data).toHaveLength(1);
    const two = lineChart(aq.table({ x: [1, 2], f: [1, 2], g: [3, 4] }), { x: 'x', y: ['f', 'g'] });
    expect(two.data.map((d) => d.name)).toEqual(['f', 'g']);
  });

  it('draws grouped bars with error bars on a categorical axis', () => {
    const fig = barChart(t, { x: 'layer', y: 'acc', group: 'model', err: 'se' });
    expect(fig.layout.barmode).toBe('group');
    expect(fig.layout.xaxis.type).toBe('category');
    expect(fig.data.map((d) => d.type)).toEqual(['bar', 'bar']);
    expect(fig.data[0].error_y.array).toEqual([0.01, 0.01, 0.01]);
  });

  it('explains a missing column', () => {
    expect(() => lineChart(t, { x: 'layer', y: 'nope' })).toThrow(/no column 'nope'.*layer, model, acc, se/);
  });
});

describe('subplots', () => {
  it('places panels side by side on their own axes, each colour bar beside its panel', () => {
    const kinds = ['residual', 'mlp', 'attn'] as const;
    const fig = subplots(kinds.map((kind) => heatmap({ values, tokens, kind, title: kind })));
    expect(fig.data.map((d) => [d.xaxis, d.yaxis])).toEqual([['x', 'y'], ['x2', 'y2'], ['x3', 'y3']]);
    expect(fig.layout.xaxis2.domain[0]).toBeGreaterThan(fig.layout.xaxis.domain[1]);
    expect(fig.layout.yaxis3.autorange).toBe('reversed');
    expect(fig.data[1].colorbar.x).toBeGreaterThan(fig.layout.xaxis2.domain[1]);
    expect(fig.layout.annotations.map((a: { text: string }) => a.text)).toEqual(['residual', 'mlp', 'attn']);
    // Same prompt in every panel: token labels only on the first.
    expect([fig.layout.yaxis.showticklabels, fig.layout.yaxis2.showticklabels]).toEqual([undefined, false]);
  });
});

describe('tables', () => {
  const t = aq.table({ token: [' Paris', '<b>', ' Rome'], p: [0.123456, 1 / 3, 2], n: [1, 2, 3] });

  it('renders HTML with escaped text, rounded numbers and a row limit', () => {
    const html = tableHtml(t, { limit: 2, title: 'top tokens' });
    expect(html).toContain('<th style="text-align:left">token</th>');
    expect(html).toContain('<td style="text-align:right">0.1235</td>');
    expect(html).toContain('&lt;b&gt;');
    expect(html).not.toContain(' Rome');
    expect(html).toContain('2 of 3 rows');
    expect(html).toContain('<caption');
  });

  it('accepts plain row objects and renders text', () => {
    expect(tableHtml([{ a: 1 }, { a: 2, b: 'x' }])).toContain('<th style="text-align:left">b</th>');
    expect(tableText(t, { digits: 2 }).split('\n')[1]).toBe(' Paris  0.12  1');
  });
});

describe('display outside a notebook', () => {
  it('knows it is not in tslab, prints text instead of displaying', () => {
    expect(inTslab()).toBe(false);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    showFigure(heatmap({ values, tokens, title: 'T' }));
    showTable([{ a: 1 }]);
    markdown('**hi**');
    expect(log.mock.calls.map((c) => String(c[0]))).toEqual(['<figure "T": 1 trace(s)>', 'a\n1', '**hi**']);
    log.mockRestore();
  });

  it('progress and track are quiet no-ops', () => {
    const bar = progress(3, 'x');
    bar.tick();
    bar.tick(5);
    bar.done();
    expect(Array.from(track([1, 2, 3]))).toEqual([1, 2, 3]);
  });

  it('figureHtml embeds the spec safely and draws into its own div', () => {
    const html = figureHtml(heatmap({ values: [[1]], tokens: ['</script><b>'] }), 'plot-1');
    expect(html).toContain('<div id="plot-1"');
    expect(html).toContain('Plotly.newPlot');
    expect(html.match(/<\/script>/g)).toHaveLength(1);
  });
});

describe('FactlensError', () => {
  it('displays as one line, the way tslab prints a failed cell', () => {
    class HookError extends FactlensError {}
    const e = new HookError('unknown hook "layers.9.mixer.x"');
    expect(inspect(e)).toBe('HookError: unknown hook "layers.9.mixer.x"');
    expect(e).toBeInstanceOf(Error);
    expect(e.stack).toContain('viz.test.ts');
  });
});
