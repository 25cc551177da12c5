/**
 * Transformer runs resumed mid-sequence from cached keys/values (runtime/kv-past.ts): a batch whose
 * rows start at different layers' positions gives, at every position it computes, the same
 * activations and logits as the full run, on every tiny transformer fixture (GQA, biases, learned
 * positions, scaled rotary, sliding windows shorter than the prompt) and on neox-facts; a wrong past
 * changes them (so the comparison can fail); bad pasts fail with the argument named.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { kvPastAt, kvResumeCacheNames, stackPasts } from '../../src/runtime/kv-past';
import { Tensor } from '../../src/runtime/tensor';
import type { ActivationCache } from '../../src/runtime/cache';
import { maxDiff } from '../support/max-diff';

const ROOT = path.join(__dirname, '..', '..');
const FIXTURES = ['tiny-neox', 'tiny-gpt2', 'tiny-llama', 'tiny-mistral', 'tiny-qwen2', 'tiny-qwen3', 'tiny-llama31', 'tiny-llama-yarn', 'tiny-mistral-window', 'tiny-qwen2-window'];
const PROMPTS = [[191, 80, 91, 37, 239, 5, 17, 44, 3, 120, 9, 61, 2], [7, 8, 200, 3, 9, 27, 1, 60, 2, 33, 4]]; // 13 and 11 tokens: past the tiny windows

/** Row b's positions from..len−1 of a [B,T,X] tensor, flattened. */
function rowSuffix(t: Tensor, b: number, from: number, len: number): Float32Array {
  const w = t.stride(1);
  return t.data.slice((b * t.shape[1] + from) * w, (b * t.shape[1] + len) * w);
}

/** Rows resumed at (layer, positions[b]) from the full run's cache: their residual there, the keys/values before. */
async function resumed(model: Model, cache: ActivationCache, layer: number, positions: number[], past = (l: number, b: number) => kvPastAt(model, cache, l, positions[b], b)) {
  const rows = PROMPTS.map((p, b) => p.slice(positions[b]));
  const T = Math.max(...rows.map((r) => r.length));
  const D = model.config.dModel;
  const resid = new Float32Array(rows.length * T * D); // [B,T,D]
  rows.forEach((r, b) => resid.set(rowSuffix(cache.get(`layers.${layer}.resid_pre`), b, positions[b], positions[b] + r.length), b * T * D));
  return model.run(rows, {
    startAt: layer > 0 || positions.some((p) => p > 0) ? { layer, resid: new Tensor(resid, [rows.length, T, D]) } : undefined,
    past: stackPasts(rows.length, layer, model.nLayers, past),
    positionOffsets: positions,
    cache: [`layers.${model.nLayers - 1}.mlp.out`, `layers.${layer}.attn.z`],
    logits: 'last',
  });
}

for (const name of [...FIXTURES, 'neox-facts']) {
  describe(`resuming ${name} from keys/values`, () => {
    let model: Model;
    let full: Awaited<ReturnType<Model['run']>>;
    beforeAll(async () => {
      model = await Model.load(name === 'neox-facts' ? path.join(ROOT, 'data', 'models', name) : path.join(ROOT, 'test', 'fixtures', name));
      full = await model.run(PROMPTS, { cache: [...kvResumeCacheNames(model), `layers.${model.nLayers - 1}.mlp.out`, ...[...Array(model.nLayers).keys()].map((l) => `layers.${l}.attn.z`)], logits: 'last' });
    });

    it('rows resumed at different positions equal the full run at every position they compute', async () => {
      const L = model.nLayers;
      for (const [layer, positions] of [[0, [4, 9]], [L - 1, [12, 1]], [Math.min(1, L - 1), [6, 0]]] as [number, number[]][]) {
        const res = await resumed(model, full.cache, layer, positions);
        const V = model.config.vocabSize;
        expect(maxDiff(res.logits!.data, full.logits!.data), `logits, layer ${layer}, positions ${positions}`).toBeLessThan(1e-4);
        expect(res.logits!.data.subarray(0, V).some((x, i) => x !== res.logits!.data[V + i])).toBe(true); // two different rows
        for (const hook of [`layers.${L - 1}.mlp.out`, `layers.${layer}.attn.z`]) {
          PROMPTS.forEach((p, b) => {
            const got = rowSuffix(res.cache.get(hook), b, 0, p.length - positions[b]);
            const want = rowSuffix(full.cache.get(hook), b, positions[b], p.length);
            expect(maxDiff(got, want), `${hook} row ${b}`).toBeLessThan(1e-4);
          });
        }
      }
    });

    it('tokens fed from the embedding at their offsets (learned positions too) equal the full run', async () => {
      const positions = [7, 3];
      const rows = PROMPTS.map((p, b) => p.slice(positions[b]));
      const past = stackPasts(2, 0, model.nLayers, (l, b) => kvPastAt(model, full.cache, l, positions[b], b));
      const res = await model.run(rows, { past, positionOffsets: positions, logits: 'last' });
      expect(maxDiff(res.logits!.data, full.logits!.data)).toBeLessThan(1e-4);
    });

    it('a past from another position changes the result (the comparison above can fail)', async () => {
      const positions = [5, 4];
      const res = await resumed(model, full.cache, 0, positions, (l, b) => kvPastAt(model, full.cache, l, positions[b], 1 - b)); // the other row's keys
      expect(maxDiff(res.logits!.data, full.logits!.data)).toBeGreaterThan(1e-3);
    });

    it('bad pasts fail with the argument named', async () => {
      const past = stackPasts(2, 0, model.nLayers, (l, b) => kvPastAt(model, full.cache, l, 2, b));
      await expect(model.run(PROMPTS.map((p) => p.slice(3)), { past, positionOffsets: [3, 3] })).rejects.toThrow(/row 0 resumes at position 3 but the past holds 2 slots at layer 0/);
      await expect(model.run(PROMPTS.map((p) => p.slice(2)), { past: { k: [], v: [] }, positionOffsets: [2, 2] })).rejects.toThrow(/past: no keys\/values for layer 0/);
      expect(() => kvPastAt(model, full.cache, 0, 99)).toThrow(/position 99 is beyond the cached run \(13 tokens\)/);
    });
  });
}

describe('resuming a state-space model from keys/values', () => {
  it('is refused with the way to resume it', async () => {
    const model = await Model.load(path.join(ROOT, 'test', 'fixtures', 'tiny-mamba'));
    expect(() => kvResumeCacheNames(model)).toThrow(/state-space models resume from their state/);
    await expect(model.run([[1, 2]], { past: { k: [], v: [] } })).rejects.toThrow(/past: .* is a state-space model; resume it with state/);
  });
});
