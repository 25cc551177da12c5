/**
 * runtime/losses.ts: the loss terms' values equal the logits toolkit's NLL and KL (runtime/logits.ts)
 * and the norm, and their gradients, which the reverse-mode engine derives, match central finite
 * differences of the loss (with a magnitude guard), including the norm's subgradient 0 at δ = 0.
 */
import { describe, expect, it } from 'vitest';
import { defineLoss, gatherPositions, klTerm, nllTerm, normTerm, scatterPositions } from '../../src/runtime/losses';
import { klDivergence, nll } from '../../src/runtime/logits';
import { rng } from '../../src/runtime/generate';
import { Tensor } from '../../src/runtime/tensor';
import { expectFiniteDifference } from '../support/fd-check';

const P = 3, V = 7, n = 2, W = 4;
const loss = defineLoss('test.loss', (L) => ({
  nll: nllTerm(L, L.logp, L.input('targets', ['P', 'V'])),
  kl: klTerm(L, L.logp, L.input('logq', ['P', 'V']), L.input('klw', ['P', 1])),
  decay: normTerm(L, L.param('x', ['n', 'W']), L.input('scale', ['n', 1])),
}));

const r = rng(5);
const randn = (k: number, s = 2) => Float32Array.from({ length: k }, () => (r() - 0.5) * s);
const logits = new Tensor(randn(P * V, 6), [P, V]);
const q = new Tensor(randn(P * V, 6), [P, V]);
const logq = new Tensor(Float32Array.from({ length: P * V }, (_, i) => {
  const row = Math.floor(i / V);
  const x = q.data.subarray(row * V, (row + 1) * V);
  const m = Math.max(...x);
  return q.data[i] - m - Math.log(x.reduce((s, y) => s + Math.exp(y - m), 0));
}), [P, V]);
const targets = Tensor.zeros([P, V]);
targets.data[0 * V + 2] = 0.5; targets.data[1 * V + 5] = 0.5; // rows 0 and 1 predict tokens 2 and 5
const klw = Tensor.from([0, 0, 0.25], [P, 1]); // row 2 is the KL row
const x = new Tensor(randn(n * W), [n, W]);
const scale = Tensor.from([0.3, 0.7], [n, 1]);
const feeds = (lg: Tensor, xx: Tensor) => ({ logits: lg, targets, logq, klw, x: xx, scale });

describe('runtime/losses', () => {
  it('terms equal the logits toolkit NLL, KL and the norm', async () => {
    const v = await loss.evaluate(feeds(logits, x));
    expect(v.parts.nll.data[0]).toBeCloseTo(0.5 * nll(logits.data.subarray(0, V), 2), 5);
    expect(v.parts.nll.data[1]).toBeCloseTo(0.5 * nll(logits.data.subarray(V, 2 * V), 5), 5);
    expect(v.parts.nll.data[2]).toBe(0);
    const kl = klDivergence(logits.data.subarray(2 * V, 3 * V), q.data.subarray(2 * V, 3 * V));
    expect(kl).toBeGreaterThan(0.1);
    expect(v.parts.kl.data[2]).toBeCloseTo(0.25 * kl, 5);
    expect(v.parts.kl.data[0]).toBe(0);
    const norm0 = Math.hypot(...x.data.subarray(0, W));
    expect(v.parts.decay.data[0]).toBeCloseTo(0.3 * norm0, 5);
    const total = [...v.parts.nll.data, ...v.parts.kl.data, ...v.parts.decay.data].reduce((a, b) => a + b, 0);
    expect(v.loss).toBeCloseTo(total, 5);
  });

  it('the engine-derived gradients match finite differences', async () => {
    const v = await loss.evaluate(feeds(logits, x));
    for (const seed of [1, 2]) {
      const rr = rng(seed);
      const dl = Float32Array.from({ length: P * V }, () => rr() - 0.5);
      const dx = Float32Array.from({ length: n * W }, () => rr() - 0.5);
      const eps = 1e-2;
      const at = async (s: number) => (await loss.evaluate(feeds(new Tensor(logits.data.map((y, i) => y + s * eps * dl[i]), [P, V]), new Tensor(x.data.map((y, i) => y + s * eps * dx[i]), [n, W])))).loss;
      const fd = ((await at(1)) - (await at(-1))) / (2 * eps);
      const an = v.gradLogits.data.reduce((s, g, i) => s + g * dl[i], 0) + v.gradParams.x.data.reduce((s, g, i) => s + g * dx[i], 0);
      expectFiniteDifference(an, fd, `direction ${seed}`, 2e-2);
    }
  });

  it('the norm term has gradient 0 at 0 (no NaN), and a missing feed is named', async () => {
    const v = await loss.evaluate(feeds(logits, Tensor.zeros([n, W])));
    expect(Array.from(v.gradParams.x.data)).toEqual(new Array(n * W).fill(0));
    await expect(loss.evaluate({ logits, targets, logq, klw, x } as never)).rejects.toThrow(/input "scale"/);
  });

  it('gathers logits rows at positions and scatters gradients back', () => {
    const t = new Tensor(randn(2 * 3 * V), [2, 3, V]); // [B,T,V]
    const at: Array<[number, number]> = [[1, 2], [0, 1]];
    const g = gatherPositions(t, at);
    expect(Array.from(g.data.subarray(0, V))).toEqual(Array.from(t.data.subarray((1 * 3 + 2) * V, (1 * 3 + 3) * V)));
    const back = scatterPositions(g, at, t.shape);
    expect(back.data[(0 * 3 + 1) * V + 3]).toBe(t.data[(0 * 3 + 1) * V + 3]);
    expect(back.data[0]).toBe(0);
  });
});
