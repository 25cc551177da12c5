/**
 * Declarative interventions: each op has exactly its documented effect on the
 * hooked activation (read back from the cache of the same hook and of a
 * downstream hook), only at the chosen positions, rows and layers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import { interventionHooks, InterventionSpec, layerWindow } from '../../src/runtime/interventions';
import { ActivationCache } from '../../src/runtime/cache';
import { FactlensError } from '../../src/errors';
import { maxDiff } from '../support/max-diff';

const FIX = path.join(__dirname, '..', 'fixtures');
const H = 'layers.1.mixer.ssm_out'; // [B,T,E]
const DOWN = 'layers.1.mixer.out_proj_in'; // = ssm_out ⊙ gate
const GATE = 'layers.1.mixer.gate';
const rows = [[3, 17, 42, 99, 5, 250, 7], [11, 400, 23, 8, 301, 64, 2]];
const other = [[90, 91, 92, 93, 94, 95, 96]];

/** The vector at [b, t] of a [B,T,W] tensor. */
function vec(t: Tensor, b: number, pos: number): Float32Array {
  const w = t.stride(1);
  return t.data.subarray((b * t.shape[1] + pos) * w, (b * t.shape[1] + pos + 1) * w);
}

describe('interventions on tiny-mamba', () => {
  let model: Model;
  let clean: ActivationCache;
  let src: ActivationCache;
  let E: number;
  const T = rows[0].length;

  beforeAll(async () => {
    model = await Model.load(path.join(FIX, 'tiny-mamba'));
    E = model.mambaConfig.dInner;
    clean = (await model.runWithCache(rows, [H, DOWN, GATE])).cache;
    src = (await model.runWithCache(other, [H])).cache;
  });

  /** Run with specs; return the hooked activation, the downstream one and the gate. */
  async function apply(specs: InterventionSpec[]) {
    const hooks = interventionHooks(model, specs, { caches: { other: src } });
    const res = await model.runWithCache(rows, [H, DOWN, GATE], { hooks });
    return { h: res.cache.get(H), down: res.cache.get(DOWN), gate: res.cache.get(GATE), logits: res.logits! };
  }

  /** Checks the op's expected value at the chosen (b,t), and that everything else is clean. */
  async function check(spec: InterventionSpec, chosen: (b: number, t: number) => boolean, expected: (c: Float32Array, b: number, t: number) => ArrayLike<number>) {
    const { h, down, gate } = await apply([spec]);
    const c = clean.get(H);
    let touched = 0;
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < T; t++) {
        const want = chosen(b, t) ? expected(vec(c, b, t), b, t) : vec(c, b, t);
        if (chosen(b, t)) touched++;
        expect(maxDiff(vec(h, b, t), want), `${spec.op} at row ${b}, position ${t}`).toBeLessThan(1e-6);
        // downstream: out_proj_in = s ⊙ g with the gate unchanged (same layer, earlier branch)
        const g = vec(gate, b, t);
        expect(maxDiff(g, vec(clean.get(GATE), b, t))).toBe(0);
        expect(maxDiff(vec(down, b, t), Array.from(want, (x, i) => x * g[i]))).toBeLessThan(1e-5);
      }
    }
    expect(touched).toBeGreaterThan(0);
  }

  it('replace from a cache at the same position', async () => {
    const s = src.get(H);
    await check({ hook: H, positions: [2, 4], op: 'replace', source: { cache: 'other' } }, (_b, t) => t === 2 || t === 4, (_c, _b, t) => vec(s, 0, t));
  });

  it('replace from a cache at a fixed source position', async () => {
    const s = src.get(H);
    await check({ hook: H, positions: [1, 5], rows: [1], op: 'replace', source: { cache: 'other', position: 6 } }, (b, t) => b === 1 && (t === 1 || t === 5), () => vec(s, 0, 6));
  });

  it('replace with a vector at the last position', async () => {
    const v = Array.from({ length: 128 }, (_, i) => i / 100 - 0.5);
    await check({ hook: H, positions: 'last', op: 'replace', value: v }, (_b, t) => t === T - 1, () => v);
  });

  it('add a vector', async () => {
    const v = Array.from({ length: 128 }, (_, i) => Math.sin(i));
    await check({ hook: H, positions: [0, 3], op: 'add', value: v }, (_b, t) => t === 0 || t === 3, (c) => Array.from(c, (x, i) => x + v[i]));
  });

  it('zero, only in the chosen row', async () => {
    await check({ hook: H, positions: 'all', rows: [0], op: 'zero' }, (b) => b === 0, () => new Float32Array(128));
  });

  it('scale', async () => {
    await check({ hook: H, positions: [6], op: 'scale', factor: -2.5 }, (_b, t) => t === 6, (c) => Array.from(c, (x) => x * -2.5));
  });

  it('mean-ablate with a given mean vector', async () => {
    const c = clean.get(H);
    const mean = Array.from({ length: E }, (_, i) => {
      let s = 0;
      for (let t = 0; t < T; t++) s += vec(c, 0, t)[i];
      return s / T;
    });
    await check({ hook: H, positions: [1, 2], op: 'mean', value: mean }, (_b, t) => t === 1 || t === 2, () => mean);
  });

  it('noise: seeded, only at the chosen positions, with the requested std', async () => {
    const spec: InterventionSpec = { hook: H, positions: [0, 1, 2], op: 'noise', std: 0.5, seed: 11 };
    const a = await apply([spec]);
    const b = await apply([spec]);
    const c = await apply([{ ...spec, seed: 12 }]);
    expect(maxDiff(a.h.data, b.h.data)).toBe(0);
    expect(maxDiff(a.logits.data, b.logits.data)).toBe(0);
    expect(maxDiff(a.h.data, c.h.data)).toBeGreaterThan(0.1);
    const cl = clean.get(H);
    const diffs: number[] = [];
    for (let r = 0; r < 2; r++) {
      for (let t = 0; t < T; t++) {
        const d = Array.from(vec(a.h, r, t), (x, i) => x - vec(cl, r, t)[i]);
        if (t > 2) expect(Math.max(...d.map(Math.abs))).toBe(0);
        else diffs.push(...d);
      }
    }
    const mean = diffs.reduce((s, x) => s + x, 0) / diffs.length;
    const std = Math.sqrt(diffs.reduce((s, x) => s + (x - mean) ** 2, 0) / diffs.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(std - 0.5)).toBeLessThan(0.05);
  });

  it("'all' covers each row's real positions only (right padding untouched)", async () => {
    const ragged = [rows[0], rows[1].slice(0, 4)];
    const before = (await model.runWithCache(ragged, [H])).cache.get(H);
    const hooks = interventionHooks(model, [{ hook: H, op: 'zero' }]);
    const after = (await model.runWithCache(ragged, [H], { hooks })).cache.get(H);
    for (let t = 0; t < T; t++) expect(Math.max(...vec(after, 0, t).map(Math.abs))).toBe(0);
    for (let t = 0; t < 4; t++) expect(Math.max(...vec(after, 1, t).map(Math.abs))).toBe(0);
    for (let t = 4; t < T; t++) expect(maxDiff(vec(after, 1, t), vec(before, 1, t))).toBe(0);
  });

  it('{layer} expands over the given layers only', async () => {
    const names = [0, 1, 2, 3].map((l) => `layers.${l}.mixer.ssm_out`);
    const hooks = interventionHooks(model, [{ hook: 'layers.{layer}.mixer.ssm_out', layers: [0, 2], positions: [3], op: 'zero' }]);
    const res = await model.runWithCache(rows, names, { hooks });
    for (const [l, n] of names.entries()) {
      const z = Math.max(...vec(res.cache.get(n), 0, 3).map(Math.abs));
      if (l === 0 || l === 2) expect(z, n).toBe(0);
      else expect(z, n).toBeGreaterThan(1e-3);
      expect(Math.max(...vec(res.cache.get(n), 1, 2).map(Math.abs))).toBeGreaterThan(1e-3); // other positions live
    }
  });

  it('a layer window equals its explicit layers', async () => {
    expect(layerWindow(5, 10, 16)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(layerWindow(10, 10, 16)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(layerWindow(14, 10, 16)).toEqual([9, 10, 11, 12, 13, 14, 15]);
    expect(layerWindow(2, 2, 4)).toEqual([1, 2]);
    expect(layerWindow(5, 3, 16)).toEqual([4, 5, 6]); // odd sizes keep size layers, centred
    expect(() => layerWindow(16, 3, 16)).toThrow(/out of range/);
    const base: InterventionSpec = { hook: 'layers.{layer}.mixer.out', positions: [2], op: 'scale', factor: 0 };
    const run = async (spec: InterventionSpec) => (await model.run(rows, { hooks: interventionHooks(model, [spec]) })).logits!;
    const win = await run({ ...base, window: { center: 2, size: 2 } });
    expect(maxDiff(win.data, (await run({ ...base, layers: [1, 2] })).data)).toBe(0);
    expect(maxDiff(win.data, (await run({ ...base, layers: [2, 3] })).data)).toBeGreaterThan(1e-3);
  });

  it('specs survive JSON.stringify/parse and give identical results', async () => {
    const specs: InterventionSpec[] = [
      { hook: 'layers.{layer}.mixer.ssm_out', window: { center: 2, size: 2 }, positions: [1, 2], rows: [1], op: 'noise', std: 0.3, seed: 5 },
      { hook: 'layers.0.resid_post', positions: 'last', op: 'replace', source: { cache: 'other', position: 3 } },
      { hook: 'layers.3.mixer.x', positions: [4], op: 'add', value: Array.from({ length: 128 }, (_, i) => (i % 7) / 10) },
    ];
    const srcCache = (await model.runWithCache(other, ['layers.0.resid_post'])).cache;
    const go = async (s: InterventionSpec[]) => (await model.run(rows, { hooks: interventionHooks(model, s, { caches: { other: srcCache } }) })).logits!;
    const a = await go(specs);
    const b = await go(JSON.parse(JSON.stringify(specs)));
    expect(maxDiff(a.data, b.data)).toBe(0);
    expect(maxDiff(a.data, (await model.logits(rows)).data)).toBeGreaterThan(1e-3);
  });

  it('clear errors: missing cache, bad position, wrong vector length, unknown hook, missing layers', async () => {
    expect(() => interventionHooks(model, [{ hook: H, op: 'replace', source: { cache: 'corrupt' } }], { caches: { other: src } })).toThrow(/no cache named "corrupt"/);
    expect(() => interventionHooks(model, [{ hook: H, op: 'replace', source: { cache: 'corrupt' } }])).toThrow(FactlensError);
    const run = (spec: InterventionSpec) => model.run(rows, { hooks: interventionHooks(model, [spec], { caches: { other: src } }) });
    await expect(run({ hook: H, positions: [7], op: 'zero' })).rejects.toThrow(/position 7 is out of range/);
    await expect(run({ hook: H, positions: [-1], op: 'zero' })).rejects.toThrow(/position -1 is out of range/);
    await expect(run({ hook: H, rows: [2], op: 'zero' })).rejects.toThrow(/row 2 is out of range/);
    await expect(run({ hook: H, op: 'add', value: [1, 2, 3] })).rejects.toThrow(/value has length 3, expected 128/);
    await expect(run({ hook: H, op: 'add', value: [1, 2, 3] })).rejects.toThrow(FactlensError);
    await expect(run({ hook: H, op: 'scale' })).rejects.toThrow(/factor/);
    expect(() => interventionHooks(model, [{ hook: 'layers.1.mixer.ssm_outt', op: 'zero' }])).toThrow(/unknown hook "layers\.1\.mixer\.ssm_outt".*Did you mean: "layers\.1\.mixer\.ssm_out"/);
    expect(() => interventionHooks(model, [{ hook: 'layers.9.mixer.x', op: 'zero' }])).toThrow(/layer 9 is out of range/);
    expect(() => interventionHooks(model, [{ hook: 'layers.{layer}.mixer.x', op: 'zero' }])).toThrow(/needs layers or window/);
    expect(() => interventionHooks(model, [{ hook: 'layers.1.mixer.state', op: 'zero' }])).toThrow(/statePatches/);
  });
});

describe('interventions on tiny-neox attention hooks (positions on axis 2)', () => {
  let model: Model;
  const ids = [[5, 77, 130, 9, 400, 12], [6, 78, 131, 10, 401, 13]];
  const names = ['layers.1.attn.v', 'layers.1.attn.pattern', 'layers.1.attn.z'];
  beforeAll(async () => {
    model = await Model.load(path.join(FIX, 'tiny-neox'));
  });

  /** [b,h,t,:] of a [B,H,T,X] tensor. */
  const head = (x: Tensor, b: number, h: number, t: number) => {
    const [, Hn, Tn, X] = x.shape;
    return x.data.subarray(((b * Hn + h) * Tn + t) * X, ((b * Hn + h) * Tn + t + 1) * X);
  };

  it('zeroing attn.v at a position zeroes it in every head, and attn.z = pattern · v', async () => {
    const clean = (await model.runWithCache(ids, names)).cache;
    const res = await model.runWithCache(ids, names, { hooks: interventionHooks(model, [{ hook: 'layers.1.attn.v', positions: [2], rows: [1], op: 'zero' }]) });
    const v = res.cache.get('layers.1.attn.v');
    const [B, Hn, T, Dh] = v.shape;
    expect([B, Hn, T]).toEqual([2, 4, 6]);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hn; h++) {
        for (let t = 0; t < T; t++) {
          const want = b === 1 && t === 2 ? new Float32Array(Dh) : head(clean.get('layers.1.attn.v'), b, h, t);
          expect(maxDiff(head(v, b, h, t), want)).toBe(0);
        }
      }
    }
    const P = res.cache.get('layers.1.attn.pattern');
    expect(maxDiff(P.data, clean.get('layers.1.attn.pattern').data)).toBe(0); // v does not feed the pattern
    const z = res.cache.get('layers.1.attn.z'); // [B,T,H·Dh]
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const want = new Float32Array(Hn * Dh);
        for (let h = 0; h < Hn; h++) for (let j = 0; j < T; j++) for (let d = 0; d < Dh; d++) want[h * Dh + d] += head(P, b, h, t)[j] * head(v, b, h, j)[d];
        expect(maxDiff(vec(z, b, t), want)).toBeLessThan(1e-5);
      }
    }
    const zc = clean.get('layers.1.attn.z');
    expect(maxDiff(vec(z, 1, 1), vec(zc, 1, 1))).toBe(0); // causal: query 1 cannot see key 2
    expect(maxDiff(vec(z, 1, 3), vec(zc, 1, 3))).toBeGreaterThan(1e-4);
  });

  it('replacing attn.pattern rows from a cache uses the same query position', async () => {
    const src = (await model.runWithCache([ids[1]], ['layers.1.attn.pattern'])).cache;
    const res = await model.runWithCache(ids, ['layers.1.attn.pattern'], {
      hooks: interventionHooks(model, [{ hook: 'layers.1.attn.pattern', rows: [0], positions: [4], op: 'replace', source: { cache: 's' } }], { caches: { s: src } }),
    });
    const P = res.cache.get('layers.1.attn.pattern');
    const S = src.get('layers.1.attn.pattern');
    for (let h = 0; h < 4; h++) {
      expect(maxDiff(head(P, 0, h, 4), head(S, 0, h, 4))).toBe(0);
      expect(maxDiff(head(P, 0, h, 3), head(S, 0, h, 3))).toBeGreaterThan(1e-4);
    }
    await expect(model.run(ids, { hooks: interventionHooks(model, [{ hook: 'layers.1.attn.k', positions: [6], op: 'zero' }]) })).rejects.toThrow(/position 6 is out of range/);
  });
});
