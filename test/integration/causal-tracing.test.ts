/**
 * Causal tracing: the batched runner equals plain one-run-per-cell restoration; restoring every
 * state gives p_clean back and restoring nothing gives p_corrupt; romba's token groups and IE
 * normalisation on hand-made inputs; ROME noise is seeded and touches only subject positions.
 * Random tiny fixtures (4 layers) for the runner; mamba-facts (with a tokenizer) for noise.
 */
import { layerWindow } from '../../src/runtime/interventions';
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { interventionHooks } from '../../src/runtime/interventions';
import {
  averageIndirectEffects, promptEffectsAt, Corruption, effectStatus, groupTokens, indirectEffect, kindInfo, noiseCorruption, noiseSpecs,
  aieHeatmap, restoredLayers, restoreStates, scaledWindow, traceHeatmap, subjectEmbeddingStd, subtractAie, traceCorruption, TraceResult, traceKinds, 
} from '../../src/methods/causal-tracing';

const FIX = path.join(__dirname, '..', 'fixtures');
const DEMO = path.join(__dirname, '..', '..', 'data', 'models');

/** A corruption built by hand from token ids (the fixtures have no tokenizer). */
function handMade(clean: number[], corrupt: number[], span: [number, number]): Corruption {
  return {
    strategy: 'alt-subject', clean, tokens: clean.map(String), subjectRange: span, span, runs: [{ ids: corrupt }],
    subject: 's', prompt: 'p', altSubject: 's2',
  };
}

for (const name of ['tiny-mamba', 'tiny-neox', 'tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-qwen3']) {
  describe(`restoration on ${name}`, () => {
    let model: Model;
    let c: Corruption;
    let results: TraceResult[];
    const window = 2;

    beforeAll(async () => {
      model = await Model.load(path.join(FIX, name));
      c = handMade([7, 71, 338, 280, 109, 92, 176], [7, 500, 12, 280, 109, 92, 176], [1, 3]);
      results = await traceCorruption(model, c, { window, layers: [0, 2, 3], batchSize: 5 });
    });

    it('every kind × cell equals restoring that cell in a plain hooked run', async () => {
      for (const r of results) {
        for (const [li, layer] of r.layers.entries()) {
          for (const pos of [0, 1, 2, 6]) {
            const cells = restoredLayers(kindInfo(model.arch, r.kind), layer, window, model.nLayers).map((l) => ({ layer: l, pos }));
            const ref = await restoreStates(model, c, r.kind, cells, r.answerId);
            expect(r.p[pos][li]).toBeCloseTo(ref.p, 5);
          }
        }
      }
    });

    it('restoring every residual at every position gives p_clean; restoring nothing gives p_corrupt', async () => {
      const r = results[0];
      const all = [];
      for (let l = 0; l < model.nLayers; l++) for (let t = 0; t < c.clean.length; t++) all.push({ layer: l, pos: t });
      expect((await restoreStates(model, c, 'residual', all, r.answerId)).p).toBeCloseTo(r.high, 6);
      expect((await restoreStates(model, c, 'residual', [], r.answerId)).p).toBeCloseTo(r.low, 6);
      const last = [...c.clean.keys()].map((t) => ({ layer: model.nLayers - 1, pos: t }));
      expect((await restoreStates(model, c, 'residual', last, r.answerId)).p).toBeCloseTo(r.high, 6);
    });

    it('the runner: last layer at the last token gives p_clean, other last-layer cells p_corrupt', () => {
      const r = results.find((x) => x.kind === 'residual')!;
      const li = r.layers.indexOf(model.nLayers - 1);
      const T = c.clean.length;
      expect(r.p[T - 1][li]).toBeCloseTo(r.high, 5);
      for (let t = 0; t < T - 1; t++) expect(r.p[t][li]).toBeCloseTo(r.low, 5);
      expect(r.kind).toBe('residual');
      expect(results.map((x) => x.kind)).toEqual(traceKinds(model.arch));
    });

    it('restoring tokens before the first corrupted one changes nothing', () => {
      for (const r of results) for (const li of r.layers.keys()) expect(r.p[0][li]).toBeCloseTo(r.low, 5);
    });
  });
}

describe('suffix runs (tokens from t on, from the state or keys/values before t)', () => {
  for (const name of ['tiny-mamba', 'tiny-mamba2', 'tiny-neox', 'tiny-gpt2', 'tiny-llama', 'tiny-mistral-window']) {
    it(`${name}: equal running the whole prompt`, async () => {
      const model = await Model.load(path.join(FIX, name));
      const c = handMade([7, 71, 38, 28, 109, 92, 176, 5, 9, 14, 3, 60, 2], [7, 200, 12, 28, 109, 92, 176, 5, 9, 14, 3, 60, 2], [1, 3]);
      const opts = { window: 2, layers: [0, 1], kinds: traceKinds(model.arch) };
      const a = await traceCorruption(model, c, { ...opts, suffix: true });
      const b = await traceCorruption(model, c, { ...opts, suffix: false });
      a.forEach((r, k) => r.p.forEach((row, t) => row.forEach((p, l) => expect(Math.abs(p - b[k].p[t][l]), `${r.kind} token ${t} layer ${l}`).toBeLessThan(1e-5))));
      // The cells differ (restoring the subject tokens matters), so equality is not vacuous.
      const ps = a.flatMap((r) => r.p.flat());
      expect(Math.max(...ps) - Math.min(...ps)).toBeGreaterThan(1e-4);
    });
  }
});

describe('ROME noise corruption', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(DEMO, 'mamba-facts'));
  });

  it('is seeded, and touches only the subject positions of the embeddings', async () => {
    const std = 3 * subjectEmbeddingStd(model, ['Eiffel Tower', 'Space Needle']);
    const a = noiseCorruption(model, '{} is located in the city of', 'Eiffel Tower', { std, samples: 2, seed: 3 });
    const b = noiseCorruption(model, '{} is located in the city of', 'Eiffel Tower', { std, samples: 2, seed: 3 });
    const d = noiseCorruption(model, '{} is located in the city of', 'Eiffel Tower', { std, samples: 2, seed: 4 });
    expect(a.runs[1].noise!.vectors[0]).toEqual(b.runs[1].noise!.vectors[0]);
    expect(a.runs[1].noise!.vectors[0]).not.toEqual(d.runs[1].noise!.vectors[0]);
    expect(a.runs[0].noise!.vectors[0]).not.toEqual(a.runs[1].noise!.vectors[0]);
    const clean = (await model.run([a.clean], { cache: ['embed'], logits: 'none' })).cache.get('embed');
    const noisy = (await model.run([a.runs[0].ids], { hooks: interventionHooks(model, noiseSpecs(a.runs[0])), cache: ['embed'], logits: 'none' })).cache.get('embed');
    const D = model.config.dModel;
    for (let t = 0; t < a.clean.length; t++) {
      const diff = Math.max(...[...Array(D).keys()].map((i) => Math.abs(noisy.data[t * D + i] - clean.data[t * D + i])));
      const inSubject = t >= a.subjectRange[0] && t < a.subjectRange[1];
      if (inSubject) expect(diff).toBeGreaterThan(0.1 * std);
      else expect(diff).toBe(0);
    }
  });

  it('p_corrupt is the mean over the noisy copies, and the runner agrees with plain restoration', async () => {
    const c = noiseCorruption(model, '{} is located in the city of', 'Eiffel Tower', { std: 0.3, samples: 2, seed: 1 });
    const [r] = await traceCorruption(model, c, { kinds: ['gate'], window: 3, layers: [5], positions: [0, c.subjectRange[1] - 1, c.clean.length - 1] });
    const none = await restoreStates(model, c, 'gate', [], r.answerId);
    expect(r.low).toBeCloseTo(none.p, 6);
    const pos = c.subjectRange[1] - 1;
    const ref = await restoreStates(model, c, 'gate', layerWindow(5, 3, model.nLayers).map((l) => ({ layer: l, pos })), r.answerId);
    expect(r.p[1][0]).toBeCloseTo(ref.p, 5);
  });

  it('subjectEmbeddingStd is the unbiased std of the subject-token embedding entries', () => {
    const W = model.weight('embeddings.weight');
    const D = model.config.dModel;
    const xs = model.encode('Paris').flatMap((id) => Array.from(W.data.subarray(id * D, (id + 1) * D)));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
    expect(subjectEmbeddingStd(model, ['Paris'])).toBeCloseTo(std, 6);
  });
});

describe('romba token groups (average_indirect_effects)', () => {
  const grid = (T: number) => [...Array(T).keys()].map((t) => [t, 10 * t]); // row t = [t, 10t]

  it('multi-token subject in the middle', () => {
    const g = groupTokens(grid(8), [2, 5]); // prefix 0,1; subject 2,3,4; further 5,6; last 7
    expect(g[0]).toEqual([0.5, 5]);
    expect(g[1]).toEqual([2, 20]); // [2, 3)
    expect(g[2]).toEqual([3, 30]);
    expect(g[3]).toEqual([4, 40]);
    expect(g[4]).toEqual([5.5, 55]);
    expect(g[5]).toEqual([7, 70]);
  });

  it('two-token subject: subject_[:-2] is zeros; subject ending before the last token: further is zeros', () => {
    const g = groupTokens(grid(6), [3, 5]);
    expect(g[1]).toEqual([0, 0]);
    expect(g[4]).toEqual([0, 0]); // e = T − 1
  });

  it('one-token subject: subject_[:-2] is NaN, subject_2nd_last is the token before it', () => {
    const g = groupTokens(grid(6), [2, 3]);
    expect(g[1].every(Number.isNaN)).toBe(true);
    expect(g[2]).toEqual([1, 10]);
    expect(g[3]).toEqual([2, 20]);
  });

  it('subject at the start: prefix is NaN; a one-token one wraps like Python (row −1, slice [0:−1])', () => {
    expect(groupTokens(grid(5), [0, 2])[0].every(Number.isNaN)).toBe(true);
    const g = groupTokens(grid(5), [0, 1]);
    expect(g[2]).toEqual([4, 40]); // differences[-1]
    expect(g[1]).toEqual([1.5, 15]); // differences[0:-1].mean
  });

  it('averages IE over prompts, NaN propagating (romba) or skipped, leaving degenerate prompts out', () => {
    const trace = (span: [number, number], ie: number[][], status: TraceResult['status'] = 'ok'): TraceResult => ({
      kind: 'residual', label: '', window: 1, strategy: 'alt-subject', layers: [0, 1], positions: ie.map((_, i) => i), tokens: ie.map((_, i) => String(i)),
      p: ie, ie, high: 1, low: 0, status, answerId: 0, answer: '', subjectRange: span, span, subject: '', prompt: '',
    });
    const a = trace([1, 3], grid(5));
    const b = trace([0, 2], grid(5).map((r) => r.map((x) => x * 2)));
    const bad = trace([1, 3], grid(5).map((r) => r.map(() => NaN)), 'small-gap');
    const aie = averageIndirectEffects([a, b, bad]);
    expect(aie.count).toBe(2);
    expect(aie.excluded).toBe(1);
    expect(aie.values[0].every(Number.isNaN)).toBe(true); // b has an empty prefix
    expect(aie.values[3]).toEqual([(2 + 2) / 2, (20 + 20) / 2]);
    expect(averageIndirectEffects([a, b], { nan: 'skip' }).values[0]).toEqual([0, 0]);
    // The per-prompt values behind a cell (for its standard error): the 'ok' prompts only, NaN left out; their mean is the cell.
    const unknownFact = trace([1, 3], grid(5), 'not-known'); // finite IE, but the model does not know the fact
    const subjectLast = promptEffectsAt([a, b, bad, unknownFact], 'subject_last', 1);
    expect(subjectLast).toEqual([groupTokens(a.ie, a.span)[3][1], groupTokens(b.ie, b.span)[3][1]]);
    expect((subjectLast[0] + subjectLast[1]) / 2).toBe(aie.values[3][1]);
    expect(promptEffectsAt([a, b], 'prefix', 0)).toEqual([groupTokens(a.ie, a.span)[0][0]]); // b's prefix is empty (NaN)
    expect(() => promptEffectsAt([a], 'subject_last', 5)).toThrow(/layer 5 was not traced/);
    expect(() => promptEffectsAt([a], 'subject', 0)).toThrow(/no group "subject"/);
    const fig = aieHeatmap(aie);
    expect(fig.layout.yaxis.ticktext).toEqual(['prefix', 'subject_[:-2]*', 'subject_2nd_last*', 'subject_last*', 'further tokens', 'last token']);
    expect(fig.data[0].z[0]).toEqual([null, null]); // NaN cells are gaps
    const one = traceHeatmap(a);
    expect(one.layout.yaxis.ticktext).toEqual(['0', '1*', '2*', '3', '4']);
    expect(one.data[0].colorscale[8][1]).toBe('#3f007d'); // residual: Purples
    expect(traceHeatmap({ ...a, kind: 'ssm', window: 10 }).layout.xaxis.title.text).toBe('center of interval of 10 restored layers');
    const o = averageIndirectEffects([a]);
    const d = subtractAie(o, { ...o, values: o.values.map((r) => r.map(() => 1)) }, { ...o, values: o.values.map((r) => r.map(() => 0.5)) });
    expect(d.values[3]).toEqual([2 - 1.5, 20 - 1.5]);
  });
});

describe('indirect effect normalisation and windows', () => {
  it('relative recovery, with degenerate corruptions flagged and NaN', () => {
    expect(indirectEffect(0.5, 0.9, 0.1)).toBeCloseTo(0.5, 12);
    expect(indirectEffect(0.9, 0.9, 0.1)).toBeCloseTo(1, 12);
    expect(effectStatus(0.5, 0.495)).toBe('small-gap');
    expect(indirectEffect(0.5, 0.5, 0.495)).toBeNaN();
    expect(effectStatus(0.2, 0.6)).toBe('inverted');
    expect(indirectEffect(0.3, 0.2, 0.6)).toBeNaN();
    expect(effectStatus(0.5, 0.4, 0.2)).toBe('small-gap');
    expect(effectStatus(NaN, 0.4)).toBe('small-gap');
  });

  it("windows follow romba's range(max(0, l − w//2), min(L, l − (−w//2)))", () => {
    expect(layerWindow(20, 10, 64)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(layerWindow(2, 10, 64)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(layerWindow(62, 10, 64)).toEqual([57, 58, 59, 60, 61, 62, 63]);
    expect(layerWindow(5, 3, 16)).toEqual([4, 5, 6]);
    expect([scaledWindow('mamba', 64), scaledWindow('gpt_neox', 32), scaledWindow('mamba', 16), scaledWindow('gpt_neox', 8)]).toEqual([10, 10, 3, 3]);
  });
});
