/**
 * Packed models (Model.load(dir, { packed: true })): plain forwards run on
 * weights onnxruntime packed once; they must give the numbers of the default
 * model, hold no float32 copy of the layer weights until asked, and hooks and
 * edits must still work (from weights read back from the checkpoint).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../src/runtime/model';
import { Tensor } from '../src/runtime/tensor';
import { maxDiff } from './max-diff';

const MODELS = path.join(__dirname, '..', 'data', 'models');

for (const name of ['mamba-facts', 'neox-facts']) {
  describe(`packed ${name}`, () => {
    let plain: Model;
    let packed: Model;
    let rows: number[][];
    beforeAll(async () => {
      plain = await Model.load(path.join(MODELS, name));
      packed = await Model.load(path.join(MODELS, name), { packed: true });
      const ids = plain.encode('The Eiffel Tower is located in the city of');
      rows = [ids, ids.slice(0, 4)]; // right-padded batch
    });
    afterAll(async () => {
      await packed.releasePacked();
    });

    it('gives the logits of the default model without keeping the layer weights in JavaScript', async () => {
      const want = await plain.logits(rows);
      const got = await packed.logits(rows);
      expect(maxDiff(got.data, want.data)).toBeLessThan(1e-4);
      expect(packed.weightBytes).toBe(plain.weightBytes);
      const layerBytes = plain.weightBytes - packed.residentWeightBytes;
      expect(layerBytes).toBeGreaterThan(0.3 * plain.weightBytes); // the layers were never read into JavaScript
    });

    it('hooks read the weights back from the checkpoint and equal the default model', async () => {
      const hook = name === 'mamba-facts' ? 'layers.2.mixer.out' : 'layers.2.mlp.out';
      const want = await plain.runWithCache(rows, [hook]);
      const got = await packed.runWithCache(rows, [hook]);
      expect(maxDiff(got.cache.get(hook)!.data, want.cache.get(hook)!.data)).toBe(0);
      expect(maxDiff(got.logits!.data, want.logits!.data)).toBe(0);
    });

    it('an edited view runs from float32 weights and matches the same edit of the default model', async () => {
      const w = name === 'mamba-facts' ? 'layers.3.mixer.out_proj.weight' : 'layers.3.mlp.dense_4h_to_h.weight';
      const scaled = (m: Model) => {
        const t = m.weight(w);
        return new Map([[w, new Tensor(t.data.map((x) => 2 * x), t.shape)]]);
      };
      const want = await plain.withWeights(scaled(plain)).logits(rows);
      const got = await packed.withWeights(scaled(packed)).logits(rows);
      expect(maxDiff(got.data, want.data)).toBe(0);
      const unedited = await packed.logits(rows);
      expect(maxDiff(got.data, unedited.data)).toBeGreaterThan(1e-3);
    });
  });
}
