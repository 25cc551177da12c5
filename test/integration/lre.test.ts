// LRE building blocks: linear algebra (SVD, low rank, pseudo-inverse), prompts, metrics on hand-made
// inputs, and Jacobians of the real (nonlinear) tiny fixtures against finite differences and the
// engine's own jacobian().
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import { jacobian } from '../../src/runtime/grad';
import { rng } from '../../src/runtime/generate';
import { identity, lowRankApprox, lowRankPinv, matMul, matrix, Matrix, maxAbsDiff, numericalRank, pinvApplyRanks, svd, transpose } from '../../src/methods/lre/linalg';
import { isNontrivialPrefix, makeIclPrompt, subjectPrompt } from '../../src/methods/lre/prompts';
import { betaGrid, editTargets, faithfulness, rankGrid, recallAtK } from '../../src/methods/lre/metrics';
import { encodePrompts, runFrom, streamAt, streamLast } from '../../src/methods/lre/encode';
import { streamJacobians } from '../../src/methods/lre/jacobian';
import { LinearRelation } from '../../src/methods/lre/operator';
import { hStream, lreLayers, streamHook, zStream } from '../../src/methods/lre/sites';
import { sweepRelation, SweepRow } from '../../src/methods/lre/sweep';
import { layerCurves, relationBars, relationSummary, sweepFigure } from '../../src/methods/lre/figures';
import { loadRelation } from '../../src/data/relations';
import { maxDiff } from '../support/max-diff';

const FIX = path.resolve(__dirname, '..', 'fixtures');

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const r = rng(seed);
  return matrix(rows, cols, Array.from({ length: rows * cols }, () => r() * 2 - 1));
}

describe('linear algebra', () => {
  it('one-sided Jacobi SVD: A = U diag(S) Vᵀ, orthonormal factors, decreasing σ', () => {
    const A = randomMatrix(12, 9, 1);
    const { U, S, V } = svd(A);
    const US = matrix(12, 9, U.data.map((v, i) => v * S[i % 9]));
    expect(maxAbsDiff(matMul(US, transpose(V)), A)).toBeLessThan(1e-12);
    expect(maxAbsDiff(matMul(transpose(U), U), identity(9))).toBeLessThan(1e-12);
    expect(maxAbsDiff(matMul(transpose(V), V), identity(9))).toBeLessThan(1e-12);
    for (let i = 1; i < 9; i++) expect(S[i]).toBeLessThanOrEqual(S[i - 1]);
    // Known singular values: an orthogonal basis scaled by 5, 3, 1.
    const Q = svd(randomMatrix(3, 3, 2)).U;
    const D3 = matrix(3, 3, [5, 0, 0, 0, 3, 0, 0, 0, 1]);
    expect(Array.from(svd(matMul(matMul(Q, D3), transpose(Q))).S).map((s) => +s.toFixed(10))).toEqual([5, 3, 1]);
  });

  it('low-rank approximation and the rank-r pseudo-inverse of a known rank-3 matrix', () => {
    const X = randomMatrix(10, 3, 3);
    const Y = randomMatrix(10, 3, 4);
    const A = matMul(X, transpose(Y)); // rank 3
    const s = svd(A);
    expect(numericalRank(s.S, 1e-10)).toBe(3);
    expect(maxAbsDiff(lowRankApprox(s, 3), A)).toBeLessThan(1e-12);
    // Eckart–Young: the rank-1 error has Frobenius norm² = σ₂² + σ₃².
    const E1 = lowRankApprox(s, 1);
    const err = A.data.reduce((acc, v, i) => acc + (v - E1.data[i]) ** 2, 0);
    expect(err).toBeCloseTo(s.S[1] ** 2 + s.S[2] ** 2, 10);
    // Moore–Penrose conditions of the rank-3 pseudo-inverse.
    const P = lowRankPinv(s, 3);
    expect(maxAbsDiff(matMul(matMul(A, P), A), A)).toBeLessThan(1e-10);
    expect(maxAbsDiff(matMul(matMul(P, A), P), P)).toBeLessThan(1e-10);
    const AP = matMul(A, P);
    expect(maxAbsDiff(AP, transpose(AP))).toBeLessThan(1e-10);
    // A full-rank matrix: the full pinv is the inverse; applying several ranks at once matches the matrices.
    const B = randomMatrix(6, 6, 5);
    const sb = svd(B);
    expect(maxAbsDiff(matMul(lowRankPinv(sb, 6), B), identity(6))).toBeLessThan(1e-10);
    const d = [1, -2, 0.5, 3, 0, 1];
    const applied = pinvApplyRanks(sb, d, [6, 0, 2]);
    [6, 0, 2].forEach((r, i) => {
      const Pr = lowRankPinv(sb, r);
      const expected = Array.from({ length: 6 }, (_, a) => d.reduce((acc, v, b) => acc + Pr.data[a * 6 + b] * v, 0));
      expected.forEach((v, a) => expect(applied[i][a]).toBeCloseTo(v, 10));
    });
    expect(Array.from(applied[1])).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('LinearRelation: β scales only J h; withRank uses the truncated J; inverse undoes J', () => {
    const J = Float32Array.from([2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.1]);
    const b = Float32Array.from([1, 1, 1, 1]);
    const lre = new LinearRelation(J, b, { layer: 0, hStream: 0, zStream: 1 });
    expect(Array.from(lre.withBeta(3).apply([[1, 1, 1, 1]]).data)).toEqual([7, 4, 2.5, 1.3].map((v) => Math.fround(v)));
    expect(Array.from(lre.withRank(2).apply([[1, 1, 1, 1]]).data)).toEqual([3, 2, 1, 1]);
    const dh = lre.inverse([2, 1, 0.5, 0.1], [4, 1]);
    expect(Array.from(dh[0]).map((v) => +v.toFixed(6))).toEqual([1, 1, 1, 1]); // J is float32 (0.1 is not exact)
    expect(Array.from(dh[1]).map((v) => +v.toFixed(12))).toEqual([1, 0, 0, 0]);
    expect(() => new LinearRelation(J, new Float32Array(3), { layer: 0, hStream: 0, zStream: 1 })).toThrow(/expected 3×3/);
  });
});

describe('prompts and metrics', () => {
  let demo: Model;
  beforeAll(async () => void (demo = await Model.load(path.resolve(__dirname, '..', '..', 'data/models/mamba-facts'))));

  it('the few-shot prompt of the paper, and the subject-last token', () => {
    const ex = [{ subject: 'France', object: 'Paris' }, { subject: 'Peru', object: 'Lima' }, { subject: 'Chad', object: "N'Djamena" }];
    const p = makeIclPrompt('The capital of {} is', 'Peru', ex);
    expect(p).toBe("<|endoftext|> The capital of France is Paris\nThe capital of Chad is N'Djamena\nThe capital of Peru is");
    expect(makeIclPrompt('{} plays', 'X')).toBe('<|endoftext|> X plays');
    const sp = subjectPrompt(demo, 'Spain is in Spain', 'Spain');
    expect(demo.decode(sp.ids.slice(0, sp.subjectLast + 1))).toBe('Spain is in Spain'); // the LAST occurrence
    const multi = subjectPrompt(demo, p, 'Peru');
    expect(demo.decode([multi.ids[multi.subjectLast]]).trim()).toBe(demo.tokenStrings(demo.encode(' Peru')).pop()!.trim());
    expect(() => subjectPrompt(demo, 'abc', 'xyz')).toThrow(/does not occur/);
  });

  it('non-trivial prefix, recall@k, edit targets, grids', () => {
    expect(isNontrivialPrefix(' Bog', 'Bogotá')).toBe(true);
    expect(isNontrivialPrefix(' PARIS ', 'paris')).toBe(true);
    expect(isNontrivialPrefix(' ', 'Paris')).toBe(false);
    expect(isNontrivialPrefix('Parish', 'Paris')).toBe(false);
    const r = recallAtK([[' Par', ' Lon'], [' Ber', ' Rom'], [' x', ' y']], ['Paris', 'Rome', 'Oslo']);
    expect(r).toEqual([1 / 3, 2 / 3]);
    const tests = [{ subject: 'a', object: 'X' }, { subject: 'b', object: 'X' }, { subject: 'c', object: 'Y' }, { subject: 'd', object: 'Z' }];
    const t = editTargets(tests, rng(1));
    t.forEach((j, i) => {
      expect(j).not.toBe(i);
      expect(tests[j].object).not.toBe(tests[i].object);
    });
    expect(editTargets([{ subject: 'a', object: 'X' }, { subject: 'b', object: 'X' }], rng(1))).toEqual([-1, -1]);
    expect(betaGrid(demo)).toHaveLength(25);
    expect(betaGrid(demo)[24]).toBe(12);
    expect(rankGrid(demo, 8)).toEqual(Array.from({ length: 32 }, (_, i) => i * 8));
  });

  it('faithfulness on hand-made h: J = I, b = 0 decodes h itself', async () => {
    const tiny = await Model.load(path.join(FIX, 'tiny-mamba'));
    const D = tiny.config.dModel;
    const eye = new Float32Array(D * D);
    for (let i = 0; i < D; i++) eye[i * D + i] = 1;
    const lre = new LinearRelation(eye, new Float32Array(D), { layer: 0, hStream: 0, zStream: 3 });
    // Three "prompts" whose h at the subject are rows of the embedding; objects: the decoded token of
    // the first two, and a token that is not predicted for the third.
    const W = tiny.weight('embeddings.weight');
    const hs = [10, 20, 30].map((t) => Float32Array.from(W.data.subarray(t * D, (t + 1) * D), (v) => v * 50));
    const logits = await tiny.unembed(new Tensor(Float32Array.from(hs.flatMap((h) => Array.from(h))), [3, D]));
    const V = logits.shape[1];
    const argmax = [0, 1, 2].map((n) => {
      let best = 0;
      for (let v = 1; v < V; v++) if (logits.data[n * V + v] > logits.data[n * V + best]) best = v;
      return best;
    });
    const fake = (h: Float32Array) => ({ text: '', subject: '', ids: [1], subjectLast: 0, start: 0, streams: [h], logits: new Float32Array(0) });
    const cases = hs.map((h, n) => ({ prompt: fake(h), object: n < 2 ? `<${argmax[n]}>` : `<${(argmax[2] + 1) % V}>` }));
    const f = await faithfulness(tiny, lre, cases, { betas: [0, 1], k: 1 });
    expect(f.byBeta[1].recall).toEqual([2 / 3]);
    expect(f.beta).toBe(1);
    expect(f.predictions.map((p) => p[0].id)).toEqual(argmax);
  });
});

describe('sweep and figures', () => {
  it('a small sweep on the demo Mamba: rows per layer, metrics in [0, 1], the paper-style figures', async () => {
    const demo = await Model.load(path.resolve(__dirname, '..', '..', 'data/models/mamba-facts'));
    const rows = await sweepRelation(demo, loadRelation('country_capital_city'), {
      layers: [13, 15], trials: 1, nTrain: 3, maxCandidates: 16, maxTest: 6, betas: [0, 1, 2], ranks: [0, 64],
    });
    expect(rows.map((r) => r.layer)).toEqual(['13', '15']);
    for (const r of rows) {
      expect(r.nTest).toBeGreaterThan(3);
      expect(r.zDecode).toBeGreaterThan(0.5);
      for (const v of [r.faithfulness, r.recallK, r.causality, r.baseline, r.zDecode]) expect(v >= 0 && v <= 1).toBe(true);
      expect(r.recallK).toBeGreaterThanOrEqual(r.faithfulness);
      expect([0, 1, 2]).toContain(r.beta);
      expect([0, 64]).toContain(r.rank);
    }
    // Faithfulness only (no SVD, no edits): causality is NaN.
    const fOnly = await sweepRelation(demo, loadRelation('country_capital_city'), { layers: [15], trials: 1, nTrain: 3, maxCandidates: 16, maxTest: 6, betas: [1], causality: false });
    expect(fOnly).toHaveLength(1);
    expect(Number.isNaN(fOnly[0].causality)).toBe(true);
    // Two trials of made-up rows: mean ± std per layer, figures in the paper's colours.
    const fake: SweepRow[] = [0, 1].flatMap((trial) => ['emb', '0', '1'].map((layer, i) => ({
      ...rows[0], model: 'm', relation: 'r', trial, layer, layerIndex: i - 1, faithfulness: 0.2 * i + 0.1 * trial, causality: 0.5, baseline: 0.1, zDecode: 1,
    })));
    const curves = layerCurves(fake);
    expect(curves.map((c) => c.layer)).toEqual(['emb', '0', '1']);
    expect(curves[2].faithfulness).toBeCloseTo(0.45);
    expect(curves[2].faithfulnessStd).toBeCloseTo(0.05);
    const fig = sweepFigure(fake);
    const lines = fig.data.filter((t) => t.mode?.includes('lines') && t.fill === undefined);
    expect(lines.map((t) => [t.name, t.line?.color])).toEqual([['faithfulness', '#1f77b4'], ['causality', '#ff7f0e']]);
    const summary = relationSummary([...fake, ...fake.map((r) => ({ ...r, model: 'n', faithfulness: r.faithfulness / 2 }))]);
    expect(summary.find((x) => x.model === 'm')!.layer).toBe('1');
    const bars = relationBars(summary, ['m', 'n']);
    expect(bars.data.filter((t) => t.type === 'bar')).toHaveLength(2);
    const ticks = bars.data.filter((t) => t.name === 'majority baseline');
    expect(ticks[0].marker.color).toBe('#d62728');
  }, 60_000);
});

describe('Jacobians of the nonlinear fixtures', () => {
  for (const fx of ['tiny-mamba', 'tiny-neox', 'tiny-mamba2', 'tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-qwen3']) {
    it(`${fx}: resumed batched Jacobians equal the engine's jacobian() and central finite differences`, async () => {
      const model = await Model.load(path.join(FIX, fx));
      const D = model.config.dModel;
      const e = zStream(model);
      // Two prompts sharing a 6-token prefix, subject-last at positions 7 and 8.
      const base = [11, 42, 7, 99, 5, 130, 17, 23, 61, 200, 8]; // ids < 256, tiny-mamba2's vocab
      const specs = [
        { text: '', subject: '', ids: base.slice(0, 10), subjectLast: 7 },
        { text: '', subject: '', ids: [...base.slice(0, 6), 77, 78, 79, 80, 81], subjectLast: 8 },
      ];
      const enc = await encodePrompts(model, specs);
      // Encoded streams equal a plain run's cache.
      const plain = await model.run(specs[1].ids, { cache: [streamHook(model, 2)] });
      const t2 = plain.cache.get(streamHook(model, 2));
      const pos = specs[1].subjectLast + 1;
      expect(maxDiff(streamAt(model, enc[1], 2, pos), t2.data.subarray(pos * D, (pos + 1) * D))).toBeLessThan(1e-5);

      const layer = model.nLayers > 3 ? 1 : 0; // k + 1 stays below z on 3-layer tiny-mamba2
      const k = hStream(model, layer);
      const Js = await streamJacobians(model, enc[0], [k, k + 1], e, { chunk: 24 });
      const J = Js.get(k)!;
      const engine = await jacobian(model, [enc[0].ids], { hook: streamHook(model, k), position: 7 }, { hook: streamHook(model, e), position: 9 });
      expect(maxDiff(J, engine.data) / maxAbs(engine.data)).toBeLessThan(1e-5);
      const engine2 = await jacobian(model, [enc[0].ids], { hook: streamHook(model, k + 1), position: 7 }, { hook: streamHook(model, e), position: 9 });
      expect(maxDiff(Js.get(k + 1)!, engine2.data) / maxAbs(engine2.data)).toBeLessThan(1e-5);

      // Central differences along a few coordinates of h (float32: step 1e-2, tolerance 2e-3 of max |J|).
      const cols = [0, 5, D - 1];
      const eps = 1e-2;
      const rows = cols.flatMap((c) => [1, -1].map((sgn) => {
        const delta = new Float32Array(D);
        delta[c] = sgn * eps;
        return { prompt: enc[0], delta };
      }));
      const res = await runFrom(model, rows, k, { until: e });
      const [, T] = res.residual.shape;
      const last = enc[0].ids.length - 1 - enc[0].start;
      const z = (r: number) => res.residual.data.subarray((r * T + last) * D, (r * T + last + 1) * D);
      const scale = maxAbs(J);
      expect(scale, 'a Jacobian large enough to test').toBeGreaterThan(1e-2);
      cols.forEach((c, n) => {
        const fd = Array.from(z(2 * n), (v, i) => (v - z(2 * n + 1)[i]) / (2 * eps));
        const col = Array.from({ length: D }, (_, i) => J[i * D + c]);
        expect(maxDiff(fd, col) / scale).toBeLessThan(2e-3);
      });
      // The clean resumed run reproduces z.
      const clean = await runFrom(model, [{ prompt: enc[0] }], k, { until: e });
      expect(maxDiff(clean.residual.data.subarray(last * D, (last + 1) * D), streamLast(model, enc[0], e))).toBeLessThan(1e-5);
      expect(lreLayers(model)[0]).toBe(model.recurrent ? 0 : 'emb'); // SSMs: emb ≡ stream 0
    });
  }
});

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
