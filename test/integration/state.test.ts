/**
 * Mamba's recurrent state: the step API (state in, state out) is the full
 * forward cut at any position; state patches are exactly "the prefix had been
 * different"; the mixer.state read hook is the carried state.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import type { MambaState } from '../../src/runtime/forward';
import { FactlensError } from '../../src/errors';
import { maxDiff } from '../support/max-diff';

const ROOT = path.join(__dirname, '..', '..');

/** Positions [from, to) of row 0 of a [B,T,...] tensor, flat. */
function positions(t: Tensor, from: number, to: number): Float32Array {
  const w = t.stride(1);
  return t.data.subarray(from * w, to * w);
}

describe('Mamba state (mamba-facts)', () => {
  let model: Model;
  let ids: number[];
  beforeAll(async () => {
    model = await Model.load(path.join(ROOT, 'data', 'models', 'mamba-facts'));
    ids = model.encode('The Eiffel Tower is located in the city of');
    expect(ids.length).toBeGreaterThanOrEqual(8);
  });

  it('step API: a prefix with returnState, then one token at a time, gives the full-prompt logits', async () => {
    const full = await model.logits([ids]); // [1,T,V]
    const V = model.config.vocabSize;
    const k = 3;
    const first = await model.run([ids.slice(0, k)], { returnState: true });
    expect(first.state!.ssm).toHaveLength(model.nLayers);
    expect(first.state!.ssm[0].shape).toEqual([1, model.mambaConfig.dInner, model.mambaConfig.dState]);
    expect(first.state!.conv[0].shape).toEqual([1, model.mambaConfig.convKernel - 1, model.mambaConfig.dInner]);
    expect(maxDiff(first.logits!.data, positions(full, 0, k))).toBeLessThan(1e-4);
    let state: MambaState = first.state!;
    for (let t = k; t < ids.length; t++) {
      const step = await model.run([[ids[t]]], { state, returnState: true });
      expect(step.logits!.shape).toEqual([1, 1, V]);
      expect(maxDiff(step.logits!.data, positions(full, t, t + 1)), `position ${t}`).toBeLessThan(1e-4);
      state = step.state!;
    }
    // The state after the last step equals the state of the full run.
    const whole = await model.run([ids], { returnState: true, logits: 'none' });
    for (let l = 0; l < model.nLayers; l += 5) {
      expect(maxDiff(state.ssm[l].data, whole.state!.ssm[l].data)).toBeLessThan(1e-4);
      expect(maxDiff(state.conv[l].data, whole.state!.conv[l].data)).toBeLessThan(1e-5);
    }
  });

  it('without state, a run starts from zero state (feeding the suffix alone is not the same)', async () => {
    const full = await model.logits([ids]);
    const alone = await model.logits([ids.slice(4)]);
    expect(maxDiff(alone.data, positions(full, 4, ids.length))).toBeGreaterThan(1e-2);
  });

  it('patching a state with its own value changes nothing', async () => {
    const p = 4;
    const clean = await model.logits([ids]);
    const prefix = await model.run([ids.slice(0, p + 1)], { returnState: true, logits: 'none' });
    const own = await model.run([ids], {
      statePatches: [...Array(model.nLayers).keys()].map((l) => ({
        layer: l, position: p, ssm: () => prefix.state!.ssm[l], conv: () => prefix.state!.conv[l],
      })),
    });
    expect(maxDiff(own.logits!.data, clean.data)).toBeLessThan(1e-5);
    const identity = await model.run([ids], { statePatches: [{ layer: 3, position: 2, ssm: (s) => s.clone(), conv: (c) => c.clone() }] });
    expect(maxDiff(identity.logits!.data, clean.data)).toBeLessThan(1e-5);
  });

  it('state patch equals recomputing with the patched prefix', async () => {
    const suffix = model.encode(' is located in the city of');
    const prefA = model.encode('The Eiffel Tower');
    const prefB = model.encode('The Space Needle in Seattle');
    expect(prefA.length).not.toBe(prefB.length); // "corresponding positions" are shifted
    const A = [...prefA, ...suffix];
    const B = [...prefB, ...suffix];
    const pB = prefB.length - 1;
    const shift = prefA.length - prefB.length;
    const stateA = (await model.run([prefA], { returnState: true, logits: 'none' })).state!;
    const runA = await model.logits([A]);
    const cleanB = await model.logits([B]);
    const patchedB = await model.run([B], {
      statePatches: [...Array(model.nLayers).keys()].map((l) => ({
        layer: l, position: pB, ssm: () => stateA.ssm[l], conv: () => stateA.conv[l],
      })),
    });
    const V = model.config.vocabSize;
    const got = positions(patchedB.logits!, pB + 1, B.length);
    const want = positions(runA, pB + 1 + shift, A.length);
    expect(got.length).toBe(suffix.length * V);
    expect(maxDiff(got, want)).toBeLessThan(1e-4);
    // Positions up to p are B's own, and the patch really moved the suffix.
    expect(maxDiff(positions(patchedB.logits!, 0, pB + 1), positions(cleanB, 0, pB + 1))).toBeLessThan(1e-5);
    expect(maxDiff(positions(cleanB, pB + 1, B.length), want)).toBeGreaterThan(1e-1);
  });

  it('patching only the SSM state (conv kept) is not the same as patching both', async () => {
    const B = model.encode('The Space Needle is located in the city of');
    const stateA = (await model.run([model.encode('The Eiffel Tower')], { returnState: true, logits: 'none' })).state!;
    const p = 3;
    const both = await model.logits([B]);
    const patch = (conv: boolean) => [...Array(model.nLayers).keys()].map((l) => ({
      layer: l, position: p, ssm: () => stateA.ssm[l], ...(conv ? { conv: () => stateA.conv[l] } : {}),
    }));
    const ssmOnly = (await model.run([B], { statePatches: patch(false) })).logits!;
    const ssmConv = (await model.run([B], { statePatches: patch(true) })).logits!;
    expect(maxDiff(positions(ssmOnly, p + 1, p + 2), positions(ssmConv, p + 1, p + 2))).toBeGreaterThan(1e-3);
    expect(maxDiff(positions(ssmOnly, p + 1, B.length), positions(both, p + 1, B.length))).toBeGreaterThan(1e-3);
  });

  it('a state patch at layer i leaves layers < i (and positions ≤ p of layer i) untouched', async () => {
    const i = 6;
    const p = 3;
    const names = [...Array(model.nLayers).keys()].map((l) => `layers.${l}.resid_post`);
    const clean = await model.runWithCache([ids], names);
    const patched = await model.runWithCache([ids], names, { statePatches: [{ layer: i, position: p, ssm: (s) => Tensor.zeros(s.shape) }] });
    for (let l = 0; l < i; l++) expect(maxDiff(clean.cache.get(names[l]).data, patched.cache.get(names[l]).data), `layer ${l}`).toBe(0);
    const c = clean.cache.get(names[i]);
    const q = patched.cache.get(names[i]);
    expect(maxDiff(positions(c, 0, p + 1), positions(q, 0, p + 1))).toBeLessThan(1e-5);
    expect(maxDiff(positions(c, p + 1, ids.length), positions(q, p + 1, ids.length))).toBeGreaterThan(1e-3);
  });

  it('the mixer.state read hook equals the state carried by the step API at the same position', async () => {
    const { dInner: E, dState: N } = model.mambaConfig;
    const layers = [0, 7, 15];
    const res = await model.runWithCache([ids], layers.map((l) => `layers.${l}.mixer.state`));
    for (const l of layers) expect(res.cache.get(`layers.${l}.mixer.state`).shape).toEqual([1, ids.length, E, N]);
    for (const k of [1, 5, ids.length]) {
      const step = (await model.run([ids.slice(0, k)], { returnState: true, logits: 'none' })).state!;
      for (const l of layers) {
        const states = res.cache.get(`layers.${l}.mixer.state`);
        expect(maxDiff(positions(states, k - 1, k), step.ssm[l].data), `layer ${l}, position ${k - 1}`).toBeLessThan(1e-4);
      }
    }
    // and it sees a state patch: the read after the patched position is the patched state's successor, not the clean one
    const patched = await model.runWithCache([ids], ['layers.7.mixer.state'], { statePatches: [{ layer: 7, position: 2, ssm: (s) => Tensor.zeros(s.shape) }] });
    const s = patched.cache.get('layers.7.mixer.state');
    expect(maxDiff(positions(s, 0, 3), positions(res.cache.get('layers.7.mixer.state'), 0, 3))).toBeLessThan(1e-6);
    expect(maxDiff(positions(s, 3, 4), positions(res.cache.get('layers.7.mixer.state'), 3, 4))).toBeGreaterThan(1e-3);
  });

  it('batched state: rows carry their own state through the step API', async () => {
    const rows = [ids.slice(0, 6), model.encode('Paris is the capital of').slice(0, 6)];
    expect(rows[1]).toHaveLength(6);
    const full = await model.logits(rows); // [2,6,V]
    const V = model.config.vocabSize;
    const first = await model.run(rows.map((r) => r.slice(0, 4)), { returnState: true });
    const next = await model.run(rows.map((r) => [r[4]]), { state: first.state!, returnState: true });
    for (const b of [0, 1]) expect(maxDiff(next.logits!.data.subarray(b * V, (b + 1) * V), full.data.subarray((b * 6 + 4) * V, (b * 6 + 5) * V))).toBeLessThan(1e-4);
  });

  it('errors: out-of-range position and layer name the argument', async () => {
    const bad = (patch: { layer: number; position: number }) => model.run([ids], { statePatches: [{ ...patch, ssm: (s) => s }] });
    await expect(bad({ layer: 2, position: ids.length })).rejects.toThrow(FactlensError);
    await expect(bad({ layer: 2, position: ids.length })).rejects.toThrow(/position 10 is out of range 0\.\.9|position \d+ is out of range/);
    await expect(bad({ layer: 2, position: -1 })).rejects.toThrow(/position -1 is out of range/);
    await expect(bad({ layer: model.nLayers, position: 0 })).rejects.toThrow(/layer 16 is out of range/);
  });
});

describe('state errors on GPT-NeoX', () => {
  it('state patches and step state are Mamba-only', async () => {
    const neox = await Model.load(path.join(ROOT, 'test', 'fixtures', 'tiny-neox'));
    await expect(neox.run([[1, 2, 3]], { statePatches: [{ layer: 0, position: 1, ssm: (s) => s }] })).rejects.toThrow(FactlensError);
    await expect(neox.run([[1, 2, 3]], { statePatches: [{ layer: 0, position: 1, ssm: (s) => s }] })).rejects.toThrow(/only Mamba/);
    const mamba = await Model.load(path.join(ROOT, 'test', 'fixtures', 'tiny-mamba'));
    const st = (await mamba.run([[1, 2]], { returnState: true })).state!;
    await expect(neox.run([[1, 2, 3]], { state: st })).rejects.toThrow(/only Mamba/);
  });
});
