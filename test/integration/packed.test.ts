/**
 * Packed models (Model.load(dir, { packed: true })): plain forwards run on
 * weights onnxruntime read from the checkpoint and packed once; they must give
 * the numbers of the default model and hold no float32 weight in JavaScript;
 * hooks and edits must still work, from weights read back from the checkpoint,
 * retiring the packed sessions (never both copies); F16/BF16 and sharded
 * checkpoints are read by onnxruntime itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { LazyWritableTensor, SafetensorsFile, writeShardedSafetensors } from '../../src/io/safetensors';
import { Model } from '../../src/runtime/model';
import { compiledKeys } from '../../src/runtime/stage';
import { Tensor } from '../../src/runtime/tensor';
import { maxDiff } from '../support/max-diff';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');

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

    it('gives the logits of the default model without reading any weight into JavaScript', async () => {
      const want = await plain.logits(rows);
      const got = await packed.logits(rows);
      expect(maxDiff(got.data, want.data)).toBeLessThan(1e-4);
      expect(maxDiff(got.data, want.data)).toBeGreaterThan(0); // really another engine path (packed GEMMs)
      const last = await packed.logits(rows, { last: true });
      expect(maxDiff(last.data, (await plain.logits(rows, { last: true })).data)).toBeLessThan(1e-4);
      expect(packed.weightBytes).toBe(plain.weightBytes);
      expect(packed.residentWeightBytes).toBe(0); // onnxruntime read the weights from the checkpoint's file
      const batch = packed.batch(rows);
      expect(maxDiff(packed.embed(batch).data, plain.embed(batch).data)).toBe(0); // embedding rows read from the file
    });

    it('compiles the packed head once (ahead of the layers, with the spec its run uses)', async () => {
      const fresh = await Model.load(path.join(MODELS, name), { packed: true });
      const head = () => compiledKeys((k) => k.startsWith(fresh.headStage.key) && k.includes('|packed'));
      const before = head().length;
      await fresh.logits(rows);
      await fresh.logits(rows, { last: true });
      expect(head().length).toBe(before + 1);
      await fresh.releasePacked();
    });

    it('hooks read the weights back from the checkpoint, equal the default model and retire the packed sessions', async () => {
      const hook = name === 'mamba-facts' ? 'layers.2.mixer.out' : 'layers.2.mlp.out';
      const want = await plain.runWithCache(rows, [hook]);
      const got = await packed.runWithCache(rows, [hook]);
      expect(maxDiff(got.cache.get(hook)!.data, want.cache.get(hook)!.data)).toBe(0);
      expect(maxDiff(got.logits!.data, want.logits!.data)).toBe(0);
      // The hook needed float32 weights: the packed sessions are retired, plain forwards now run like the default model's.
      expect(packed.packedWeights).toBeNull();
      expect(maxDiff((await packed.logits(rows)).data, (await plain.logits(rows)).data)).toBe(0);
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

/** `dir`'s weights rewritten as `dtype` in two shards with a model.safetensors.index.json. */
function halfShards(dir: string, dtype: 'F16' | 'BF16'): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `factlens-packed-${dtype}-`));
  const file = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  const shards: Record<string, LazyWritableTensor>[] = [{}, {}];
  file.names.forEach((n, i) => {
    shards[i < file.names.length / 2 ? 0 : 1][n] = { dtype, shape: file.info(n).shape, make: () => file.readFloat32(n) };
  });
  writeShardedSafetensors(out, shards, { format: 'pt' });
  file.close();
  for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(dir, f), path.join(out, f));
  return out;
}

describe('packed half-precision, sharded checkpoints', () => {
  for (const [name, dtype] of [['mamba-facts', 'F16'], ['neox-facts', 'BF16']] as const) {
    it(`${name} as ${dtype} in two shards: onnxruntime widens the weights itself, as the default model does in TypeScript`, async () => {
      const dir = halfShards(path.join(MODELS, name), dtype);
      try {
        const plain = await Model.load(dir);
        const packed = await Model.load(dir, { packed: true });
        const ids = plain.encode('The Eiffel Tower is located in the city of');
        const want = await plain.logits([ids, ids.slice(0, 5)]);
        const got = await packed.logits([ids, ids.slice(0, 5)]);
        expect(maxDiff(got.data, want.data)).toBeLessThan(1e-4);
        expect(packed.residentWeightBytes).toBe(0);
        const full = await Model.load(path.join(MODELS, name));
        expect(maxDiff(got.data, (await full.logits([ids, ids.slice(0, 5)])).data)).toBeGreaterThan(1e-6); // the half-precision rounding shows
        await packed.releasePacked();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
