/**
 * Behaviour of the hook runtime on both demo models: patches that should do
 * nothing do nothing, patches that should matter matter (and only causally),
 * batching and padding change nothing, caches stay per-layer exact.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import { maxDiff } from '../support/max-diff';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');

/** Row b of a [B,T,...] tensor restricted to positions [0, n). */
function rowPrefix(t: Tensor, b: number, n: number): Float32Array {
  const w = t.stride(1);
  return t.data.subarray(b * t.shape[1] * w, (b * t.shape[1] + n) * w);
}

for (const name of ['mamba-facts', 'neox-facts']) {
  describe(`hooks on ${name}`, () => {
    let model: Model;
    let ids: number[];
    const mid = name === 'mamba-facts' ? 'mixer.out' : 'mlp.out';
    beforeAll(async () => {
      model = await Model.load(path.join(MODELS, name));
      ids = model.encode('The Eiffel Tower is located in the city of');
    });

    it('a forward that hooks no layer (one session for the stack) equals one that reads every layer, bit for bit', async () => {
      const rows = [ids, ids.slice(0, 5)]; // right-padded batch
      const plain = await model.logits(rows);
      const perLayer = await model.runWithCache(rows, Array.from({ length: model.nLayers }, (_, l) => `layers.${l}.resid_post`));
      expect(maxDiff(plain.data, perLayer.logits!.data)).toBe(0);
      const mid = await model.run(rows, { untilLayer: 5 });
      expect(maxDiff(mid.residual.data, perLayer.cache.get('layers.4.resid_post')!.data)).toBe(0);
    });

    it('patching an activation with its own clean value leaves the logits unchanged', async () => {
      const clean = await model.runWithCache([ids], [`layers.3.${mid}`, 'layers.5.resid_post']);
      const patched = await model.runWithHooks([ids], [
        [`layers.3.${mid}`, () => clean.cache.get(`layers.3.${mid}`)],
        ['layers.5.resid_post', () => clean.cache.get('layers.5.resid_post')],
      ]);
      expect(maxDiff(clean.logits!.data, patched.logits!.data)).toBeLessThan(1e-5);
    });

    it('a non-trivial patch changes the logits, only from the patched position on', async () => {
      const p = 4;
      const clean = await model.logits([ids]);
      const res = await model.runWithHooks([ids], [[`layers.2.${mid}`, (t) => {
        const out = t.clone();
        out.data.fill(0, p * t.shape[2], (p + 1) * t.shape[2]); // zero position p
        return out;
      }]]);
      const V = clean.shape[2];
      expect(maxDiff(clean.data.subarray(0, p * V), res.logits!.data.subarray(0, p * V))).toBeLessThan(1e-6);
      expect(maxDiff(clean.data.subarray(p * V, (p + 1) * V), res.logits!.data.subarray(p * V, (p + 1) * V))).toBeGreaterThan(1e-2);
    });

    it('hooks on layer i do not perturb layers before i', async () => {
      const names = [0, 1, 2, 3].map((l) => `layers.${l}.resid_post`);
      const clean = await model.runWithCache([ids], names);
      const hooked = await model.runWithCache([ids], names, { hooks: [['layers.3.resid_pre', (t) => new Tensor(t.data.map((x) => x * 2), t.shape)]] });
      for (const n of names.slice(0, 3)) expect(maxDiff(clean.cache.get(n).data, hooked.cache.get(n).data)).toBe(0);
      expect(maxDiff(clean.cache.get('layers.3.resid_post').data, hooked.cache.get('layers.3.resid_post').data)).toBeGreaterThan(1e-2);
    });

    it('batched equals unbatched, and right padding leaves real positions exact', async () => {
      const prompts = ['Paris is the capital of', 'The Space Needle is located in the city of', 'Danielle Darrieux\'s mother tongue is'];
      const rows = prompts.map((p) => model.encode(p));
      const cacheName = `layers.4.${mid}`;
      const batched = await model.runWithCache(rows, [cacheName]);
      const T = batched.batch.T;
      const V = model.config.vocabSize;
      for (const [b, row] of rows.entries()) {
        const single = await model.runWithCache([row], [cacheName]);
        expect(row.length < T || b === 1).toBe(true);
        expect(maxDiff(rowPrefix(batched.logits!, b, row.length), single.logits!.data)).toBeLessThan(1e-4);
        expect(maxDiff(rowPrefix(batched.cache.get(cacheName), b, row.length), single.cache.get(cacheName).data)).toBeLessThan(1e-4);
        expect(batched.logits!.shape).toEqual([3, T, V]);
      }
      // 'last' read-out picks each row's own last token.
      const last = await model.logits(rows, { last: true });
      for (const [b, row] of rows.entries()) {
        const full = rowPrefix(batched.logits!, b, row.length);
        expect(maxDiff(last.data.subarray(b * V, (b + 1) * V), full.subarray((row.length - 1) * V))).toBeLessThan(1e-5);
      }
    });

    it('rejects unknown hooks with suggestions, and bad token ids with their position', async () => {
      await expect(model.runWithCache([ids], ['layers.1.mlp_outt'])).rejects.toThrow(/unknown hook "layers.1.mlp_outt".*Did you mean/);
      await expect(model.runWithCache([ids], [`layers.99.${mid}`])).rejects.toThrow(/layer 99 is out of range/);
      await expect(model.logits([[1, 2, 999999]])).rejects.toThrow(/token id 999999 at row 0, position 2 is out of range/);
      await expect(model.logits([[]])).rejects.toThrow(/row 0 is empty/);
      await expect(model.runWithHooks([ids], [[`layers.1.${mid}`, (t) => Tensor.zeros([1, 2, 3])]])).rejects.toThrow(/returned shape \[1,2,3\]/);
    });
  });
}
