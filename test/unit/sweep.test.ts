/**
 * Batched sweeps: a (layer × position) residual-patching grid run by sweep()
 * equals running every row on its own with model.run and the same
 * interventions; the table keeps its columns; prefix and batch size change
 * nothing but speed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import * as aq from 'arquero';
import { Model } from '../../src/runtime/model';
import { interventionHooks, InterventionSpec } from '../../src/runtime/interventions';
import { sweep, autoBatchSize, chunkRuns, passCost, Row } from '../../src/runtime/sweep';
import { ActivationCache } from '../../src/runtime/cache';
import { Tensor } from '../../src/runtime/tensor';

const FIX = path.join(__dirname, '..', 'fixtures');

function logSoftmaxAt(logits: Float32Array, id: number): number {
  let m = -Infinity;
  for (const x of logits) m = Math.max(m, x);
  let s = 0;
  for (const x of logits) s += Math.exp(x - m);
  return logits[id] - m - Math.log(s);
}

for (const name of ['tiny-mamba', 'tiny-neox']) {
  describe(`sweep on ${name}`, () => {
    let model: Model;
    let clean: number[];
    let corrupt: number[];
    let target: number;
    let cleanCache: ActivationCache;
    let corruptResid: Tensor[];
    let grid: ReturnType<typeof aq.table>;

    const interventions = (row: Row): InterventionSpec[] => [
      { hook: `layers.${row.layer}.resid_pre`, positions: [row.position as number], op: 'replace', source: { cache: 'clean' } },
    ];
    const metric = (logits: Float32Array) => ({ logp: logSoftmaxAt(logits, target), top: logits.indexOf(Math.max(...logits)) });

    beforeAll(async () => {
      model = await Model.load(path.join(FIX, name));
      clean = [161, 71, 338, 280, 109, 92, 176, 253];
      corrupt = [161, 500, 12, 280, 109, 92, 176, 253]; // two tokens differ: positions correspond
      const names = [...Array(model.nLayers).keys()].map((l) => `layers.${l}.resid_pre`);
      const c = await model.runWithCache([clean], names, { logits: 'last' });
      cleanCache = c.cache;
      const lg = c.logits!.data;
      target = lg.indexOf(Math.max(...lg));
      const k = await model.runWithCache([corrupt], names, { logits: 'last' });
      corruptResid = names.map((n) => k.cache.get(n));
      const layer: number[] = [];
      const position: number[] = [];
      for (let l = 0; l < model.nLayers; l++) for (let t = 0; t < clean.length; t++) (layer.push(l), position.push(t));
      grid = aq.table({ layer, position, tag: layer.map((l, i) => `L${l}p${position[i]}`) });
    });

    /** Each row on its own, with plain model.run and the same interventions. */
    async function oneByOne(): Promise<Array<{ logp: number; top: number }>> {
      const out = [];
      for (const row of grid.objects() as Row[]) {
        const hooks = interventionHooks(model, interventions(row), { caches: { clean: cleanCache } });
        const res = await model.run([corrupt], { hooks, logits: 'last' });
        out.push(metric(res.logits!.data));
      }
      return out;
    }

    let reference: Array<{ logp: number; top: number }>;

    it('equals running each row one by one, and keeps the grid columns in order', async () => {
      reference = await oneByOne();
      const res = await sweep(model, grid, { input: corrupt, interventions, metric, caches: { clean: cleanCache } });
      expect(res.columnNames()).toEqual(['layer', 'position', 'tag', 'logp', 'top']);
      expect(res.numRows()).toBe(grid.numRows());
      expect(res.array('layer')).toEqual(grid.array('layer'));
      expect(res.array('position')).toEqual(grid.array('position'));
      expect(res.array('tag')).toEqual(grid.array('tag'));
      const logp = res.array('logp') as number[];
      const top = res.array('top') as number[];
      reference.forEach((r, i) => {
        expect(Math.abs(logp[i] - r.logp), `row ${i}`).toBeLessThan(1e-5);
        expect(top[i]).toBe(r.top);
      });
      // The grid matters: a patch where the prompts agree (layer 0, position 0) changes nothing,
      // one where they differ (layer 0, position 1) does.
      const base = metric((await model.run([corrupt], { logits: 'last' })).logits!.data).logp;
      expect(Math.abs(reference[0].logp - base)).toBeLessThan(1e-5);
      expect(Math.abs(reference[1].logp - base)).toBeGreaterThan(1e-2);
    });

    it('prefix (skipping unchanged layers) gives the same numbers', async () => {
      const res = await sweep(model, grid, {
        input: corrupt, interventions, metric, caches: { clean: cleanCache },
        prefix: { startLayer: (row) => row.layer as number, resid: (l) => corruptResid[l] },
      });
      expect(res.array('tag')).toEqual(grid.array('tag')); // grid order kept although rows run grouped by start layer
      const logp = res.array('logp') as number[];
      reference.forEach((r, i) => expect(Math.abs(logp[i] - r.logp), `row ${i}`).toBeLessThan(1e-5));
    });

    it('batchSize 1 and the automatic batch size give the same', async () => {
      expect(autoBatchSize(model, clean.length)).toBeGreaterThan(1);
      const progress: number[] = [];
      const one = await sweep(model, grid.objects() as Row[], { input: corrupt, interventions, metric, caches: { clean: cleanCache }, batchSize: 1 });
      const auto = await sweep(model, grid, { input: corrupt, interventions, metric, caches: { clean: cleanCache }, onProgress: (d) => progress.push(d) });
      const odd = await sweep(model, grid, { input: corrupt, interventions, metric, caches: { clean: cleanCache }, batchSize: 7 });
      const a = one.array('logp') as number[];
      const b = auto.array('logp') as number[];
      const c = odd.array('logp') as number[];
      a.forEach((x, i) => {
        expect(Math.abs(x - b[i])).toBeLessThan(1e-5);
        expect(Math.abs(x - c[i])).toBeLessThan(1e-5);
      });
      expect(progress[progress.length - 1]).toBe(grid.numRows());
    });
  });
}

describe('sweep with per-row inputs of different lengths (tiny-mamba)', () => {
  it('each row reads its own last token', async () => {
    const model = await Model.load(path.join(__dirname, '..', 'fixtures', 'tiny-mamba'));
    const prompts: Record<string, number[]> = { a: [5, 6, 7, 8, 9, 10, 11], b: [300, 301, 302] };
    const rows: Row[] = [];
    for (const p of ['a', 'b']) for (const layer of [1, 2]) for (const factor of [0, 3]) rows.push({ p, layer, factor });
    const interventions = (r: Row): InterventionSpec[] => [{ hook: `layers.${r.layer}.mixer.out`, positions: 'last', op: 'scale', factor: r.factor as number }];
    const metric = (lg: Float32Array) => ({ l5: lg[5], l300: lg[300] });
    const res = await sweep(model, rows, { input: (r) => prompts[r.p as string], interventions, metric });
    const got = res.objects() as Row[];
    for (const [i, r] of rows.entries()) {
      const one = await model.run([prompts[r.p as string]], { hooks: interventionHooks(model, interventions(r)), logits: 'last' });
      expect(Math.abs((got[i].l5 as number) - one.logits!.data[5])).toBeLessThan(1e-5);
      expect(Math.abs((got[i].l300 as number) - one.logits!.data[300])).toBeLessThan(1e-5);
    }
    expect(Math.abs((got[0].l5 as number) - (got[1].l5 as number))).toBeGreaterThan(1e-4); // factor 0 vs 3 differ
  });
});

describe('chunkRuns: packing runs into passes', () => {
  /** Cost of passes as the sweep runs them: lowest start layer, longest remaining suffix. */
  const costOf = (chunks: number[][], L: number, starts: number[], positions: number[], lengths: number[]) =>
    chunks.reduce((sum, c) => sum + passCost(L, Math.min(...c.map((i) => starts[i])), c.length, Math.max(...c.map((i) => lengths[i] - positions[i]))), 0);

  it('covers every run once, respects the batch size, and is as cheap as the best contiguous split of either order (brute force)', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + rand(9);
      const L = 4 + rand(20);
      const starts = Array.from({ length: n }, () => rand(L));
      const lengths = Array.from({ length: n }, () => 2 + rand(30));
      const positions = lengths.map((t) => rand(t));
      const bs = 1 + rand(6);
      const chunks = chunkRuns(L, starts, positions, lengths, bs);
      expect(chunks.flat().sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
      expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(bs);
      // Every split into passes of ≤ bs runs of either order: (tokens, start layer) and (start layer, tokens).
      const keys = [...Array(n).keys()];
      const tokens = keys.map((i) => lengths[i] - positions[i]);
      const orders = [
        [...keys].sort((a, b) => tokens[a] - tokens[b] || starts[a] - starts[b]),
        [...keys].sort((a, b) => starts[a] - starts[b] || tokens[a] - tokens[b]),
      ];
      let bestBrute = Infinity;
      for (const order of orders) {
        for (let mask = 0; mask < 2 ** (n - 1); mask++) {
          const split: number[][] = [[order[0]]];
          for (let k = 1; k < n; k++) (mask >> (k - 1)) & 1 ? split.push([order[k]]) : split[split.length - 1].push(order[k]);
          if (split.every((c) => c.length <= bs)) bestBrute = Math.min(bestBrute, costOf(split, L, starts, positions, lengths));
        }
      }
      expect(costOf(chunks, L, starts, positions, lengths)).toBeCloseTo(bestBrute, 6);
    }
  });

  it('puts a layer × position grid into fewer passes than runs, cheaper than one pass or one pass per run', () => {
    const L = 16, T = 12;
    const starts: number[] = [], positions: number[] = [], lengths: number[] = [];
    for (let l = 0; l < L; l++) for (let p = 0; p < T; p++) starts.push(l), positions.push(p), lengths.push(T);
    const chunks = chunkRuns(L, starts, positions, lengths, 256);
    const cost = costOf(chunks, L, starts, positions, lengths);
    expect(chunks.length).toBeLessThan(starts.length);
    expect(cost).toBeLessThan(costOf([[...starts.keys()]], L, starts, positions, lengths));
    expect(cost).toBeLessThan(costOf(starts.map((_, i) => [i]), L, starts, positions, lengths));
  });
});
