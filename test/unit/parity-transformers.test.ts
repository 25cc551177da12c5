/**
 * Parity with PyTorch + transformers for the adapter-table transformers (tools/make_transformer_fixtures.py):
 * GPT-2 (learned positions, Conv1D, tied), Llama (GQA 4:2, untied, θ 5e5), Mistral (GQA 4:1), Qwen2 (q/k/v
 * biases, tied) and Qwen3 (q/k norm, head_dim 32 ≠ 64/4), Llama with scaled rotary (llama3, yarn) and Mistral /
 * Qwen2 with sliding windows shorter than the longest case: logits, every hook point and gradients within 1e-4.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fs from 'fs';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { gradients, nextTokenNll } from '../../src/runtime/grad';
import { Tensor } from '../../src/runtime/tensor';

const FIX = path.join(__dirname, '..', 'fixtures');
export const TRANSFORMER_FIXTURES = ['tiny-gpt2', 'tiny-llama', 'tiny-mistral', 'tiny-qwen2', 'tiny-qwen3'];
/** Rotary and attention-window variants (the Llama graph with other tables and masks). */
const VARIANT_FIXTURES = ['tiny-llama31', 'tiny-llama-yarn', 'tiny-mistral-window', 'tiny-qwen2-window'];

/** Fixture key → our hook inside a layer (layouts: q/k/v/pattern/scores [H or Hkv][T][·], the rest [T][·]). */
const KEYS: Record<string, string> = {
  ln1: 'ln1', q: 'attn.q', k: 'attn.k', v: 'attn.v', scores: 'attn.scores', pattern: 'attn.pattern', z: 'attn.z', attn_out: 'attn.out',
  ln2: 'ln2', mlp_pre: 'mlp.pre', mlp_pre_linear: 'mlp.pre_linear', mlp_key: 'mlp.key', mlp_out: 'mlp.out', resid_post: 'resid_post',
};

const flat = (ref: unknown) => (ref as unknown[]).flat(Infinity) as number[];

/**
 * max |ours − reference| over row b of a batch whose rows are [T,...] padded to Tpad along `tAxis`;
 * entries where `hidden(query, key)` must be masked in ours (scores HF recorded before its mask).
 */
function maxRowDiff(t: Tensor, b: number, ref: unknown, hidden?: (query: number, key: number) => boolean): number {
  const r = flat(ref);
  const rowSize = t.size / t.shape[0];
  const off = b * rowSize;
  const sameT = rowSize === r.length;
  expect(sameT, `[${t.shape}] row vs ${r.length} reference values`).toBe(true);
  const T = t.shape[t.shape.length - 1];
  let m = 0;
  for (let i = 0; i < r.length; i++) {
    if (hidden) {
      const [query, key] = [Math.floor(i / T) % T, i % T];
      if (hidden(query, key)) {
        expect(t.data[off + i]).toBeLessThan(-1e8); // masked in ours; HF recorded them before its mask
        continue;
      }
    }
    m = Math.max(m, Math.abs(t.data[off + i] - r[i]));
  }
  return m;
}

/** Keys a query of layer l may not see: later ones, and in a sliding-window layer those w or more back. */
function hiddenKeys(model: Model, l: number): (query: number, key: number) => boolean {
  const c = model.config;
  const w = 'slidingWindow' in c && c.slidingWindow !== undefined && c.slidingLayers!.includes(l) ? c.slidingWindow : Infinity;
  return (query, key) => key > query || key <= query - w;
}

for (const fixture of [...TRANSFORMER_FIXTURES, ...VARIANT_FIXTURES]) {
  describe(`parity: ${fixture}`, () => {
    const ref = JSON.parse(fs.readFileSync(path.join(FIX, fixture, 'reference.json'), 'utf8'));
    let model: Model;
    beforeAll(async () => {
      model = await Model.load(path.join(FIX, fixture));
    });

    for (const [ci, c] of (ref.cases as any[]).entries()) {
      it(`case ${ci} (T=${c.input_ids.length}): logits, embedding, final norm and every in-layer hook point`, async () => {
        const L = model.nLayers;
        const layerKeys = Object.keys(c.layers[0]);
        expect(layerKeys.every((k) => k in KEYS), `unmapped fixture arrays: ${layerKeys}`).toBe(true);
        const names = ['embed', 'final_ln'];
        for (let l = 0; l < L; l++) names.push(...layerKeys.map((k) => `layers.${l}.${KEYS[k]}`));
        const res = await model.runWithCache([c.input_ids], names);
        expect(maxRowDiff(res.logits!, 0, c.logits)).toBeLessThan(1e-4);
        expect(maxRowDiff(res.cache.get('embed'), 0, c.embed)).toBeLessThan(1e-4);
        expect(maxRowDiff(res.cache.get('final_ln'), 0, c.final_ln)).toBeLessThan(1e-4);
        for (let l = 0; l < L; l++) {
          for (const k of layerKeys) expect(maxRowDiff(res.cache.get(`layers.${l}.${KEYS[k]}`), 0, c.layers[l][k], k === 'scores' ? hiddenKeys(model, l) : undefined), `layer ${l} ${k}`).toBeLessThan(1e-4);
        }
      });

      // One token has no next token, so no loss to differentiate (the NeoX parity test covers that empty loss).
      if (c.input_ids.length > 1) it(`case ${ci}: loss and gradients (embedding, MLP output, down projection weight) match PyTorch`, async () => {
        const g = c.grad;
        const mlp = model.mlpDown!;
        const hook = `layers.${g.layer}.mlp.out`;
        const weight = `layers.${g.layer}.${mlp.module}.weight`;
        const res = await gradients(model, [c.input_ids], nextTokenNll, ['embed', hook, weight]);
        const scale = (r: unknown) => Math.max(...flat(r).map(Math.abs));
        expect(Math.abs(res.loss - g.loss_value) / g.loss_value).toBeLessThan(1e-5);
        for (const [name, r] of [['embed', g.d_loss_d_embed], [hook, g.d_loss_d_mlp_out], [weight, g.d_loss_d_down_weight]] as const) {
          expect(scale(r), name).toBeGreaterThan(0.01); // relative to a reference that is far from zero
          expect(maxRowDiff(res.grads.get(name)!.reshape([1, res.grads.get(name)!.size]), 0, r) / scale(r), name).toBeLessThan(1e-4);
        }
      });
    }

    it('a right-padded batch of all cases gives each row its own logits (padding and the causal mask)', async () => {
      const cases = ref.cases as any[];
      const res = await model.run(cases.map((c) => c.input_ids), { logits: 'all' });
      const [, T, V] = res.logits!.shape;
      cases.forEach((c, b) => {
        const row = res.logits!.data.subarray(b * T * V, (b * T + c.input_ids.length) * V);
        const r = flat(c.logits);
        let m = 0;
        for (let i = 0; i < r.length; i++) m = Math.max(m, Math.abs(row[i] - r[i]));
        expect(m, `row ${b}`).toBeLessThan(1e-4);
      });
    });
  });
}
