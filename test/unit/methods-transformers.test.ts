/**
 * ROME and attention knockout on the adapter-table transformers (causal tracing, LRE Jacobians and
 * generation run on them in causal-tracing / lre / generate tests). The tiny fixtures get a tokenizer of
 * their family (test/fixtures/tokenizers, 512 tokens = their vocab) in a temporary copy.
 *
 * ROME edits each family's MLP down projection (GPT-2 mlp.c_proj, stored Conv1D [in,out] and read as
 * [out,in]; Llama-family mlp.down_proj): after the edit the value the edited model computes at the
 * subject's last token is v*, and so is W′k* (+ b) from the edited weights.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { rome } from '../../src/methods/rome/edit';
import { editSite } from '../../src/methods/rome/sites';
import { secondMoment } from '../../src/methods/rome/stats';
import { subjectTokens } from '../../src/methods/rome/subject';
import { attentionKnockoutEdits, runVariants } from '../../src/methods/information-flow';
import { probOf } from '../../src/runtime/logits';
import { Tensor } from '../../src/runtime/tensor';
import { interventionHooks } from '../../src/runtime/interventions';
import { maxDiff } from '../support/max-diff';

const FULL_ROW = { offset: 0, pastSlots: 0 }; // a RowEdit applied to a full (not resumed) run

const FIX = path.join(__dirname, '..', 'fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'methods-transformers-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const FAMILIES: Array<{ fixture: string; tokenizer: string; down: string; rotary: boolean }> = [
  { fixture: 'tiny-gpt2', tokenizer: 'gpt2-bpe', down: 'mlp.c_proj', rotary: false },
  { fixture: 'tiny-llama', tokenizer: 'llama3-bpe', down: 'mlp.down_proj', rotary: true },
  { fixture: 'tiny-qwen2', tokenizer: 'llama3-bpe', down: 'mlp.down_proj', rotary: true },
  { fixture: 'tiny-qwen3', tokenizer: 'llama3-bpe', down: 'mlp.down_proj', rotary: true },
];

/** The fixture with a tokenizer.json beside it. */
async function withTokenizer(fixture: string, tokenizer: string): Promise<Model> {
  const dir = path.join(tmp, fixture);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(FIX, fixture, f), path.join(dir, f));
  fs.copyFileSync(path.join(FIX, 'tokenizers', tokenizer, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  return Model.load(dir);
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

for (const fam of FAMILIES) {
  describe(`methods on ${fam.fixture}`, () => {
    it(`ROME at ${fam.down}: the edited forward and the edited weights both give v*`, async () => {
      const model = await withTokenizer(fam.fixture, fam.tokenizer);
      const layer = 1;
      const site = editSite(model, layer);
      expect(site.weight).toBe(`layers.${layer}.${fam.down}.weight`);
      expect([site.keyDim, site.valueDim]).toEqual([model.transformerConfig.dFF, model.config.dModel]);
      const stats = await secondMoment(model, site, { samples: 2000, maxLength: 48, cache: false, progress: false });
      const req = { prompt: '{} is located in the city of', subject: 'The Eiffel Tower', target: 'Rome' };
      const e = await rome(model, req, { layer, templates: ['{}', 'In the news: {}'], stats, steps: 4 });
      const bare = subjectTokens(model, req.prompt, req.subject);
      const read = async (m: Model) => {
        const r = await m.run([bare.ids], { cache: [site.keyHook, site.valueHook], logits: 'none', untilLayer: layer + 1 });
        const at = (hook: string, width: number) => r.cache.get(hook).data.slice(bare.last * width, (bare.last + 1) * width);
        return { k: at(site.keyHook, site.keyDim), v: at(site.valueHook, site.valueDim) };
      };
      const before = await read(model);
      const after = await read(e.model);
      const scale = maxAbs(e.vStar);
      expect(maxDiff(before.v, e.vStar) / scale, 'the edit moves the value').toBeGreaterThan(1e-2);
      expect(maxDiff(after.k, before.k)).toBe(0);
      expect(maxDiff(after.v, e.vStar) / scale).toBeLessThan(1e-4);
      const W = e.model.weight(site.weight); // [D,F]
      const b = site.bias ? e.model.weight(site.bias).data : null; // [D]
      const F = W.shape[1];
      const wk = Float64Array.from({ length: W.shape[0] }, (_, i) => {
        let s = b ? b[i] : 0;
        for (let j = 0; j < F; j++) s += W.data[i * F + j] * after.k[j];
        return s;
      });
      expect(maxDiff(wk, e.vStar) / scale).toBeLessThan(1e-4);
      expect(maxDiff((await model.logits([bare.ids])).data, (await (await withTokenizer(fam.fixture, fam.tokenizer)).logits([bare.ids])).data)).toBe(0); // the original is untouched
    }, 120_000);

    it('attention knockout: cut edges get zero attention in every query head (GQA included), others renormalise', async () => {
      const model = await Model.load(path.join(FIX, fam.fixture));
      const ids = [161, 71, 338, 280, 109, 92, 176, 253];
      const T = ids.length;
      const edits = attentionKnockoutEdits([1, 2], T - 1, [1, 2, 3]);
      const names = [1, 3].map((l) => `layers.${l}.attn.pattern`);
      const hooks = edits.map((ed): [string, (t: Tensor) => Tensor] => [ed.hook, (t) => {
        const out = t.clone();
        ed.apply(out.data.subarray(0, out.stride(0)), out.shape.slice(1), FULL_ROW);
        return out;
      }]);
      const cut = await model.runWithCache([ids], names, { hooks, logits: 'last' });
      const p = cut.cache.get('layers.1.attn.pattern').data; // [1,H,T,T]
      const H = model.transformerConfig.nHead;
      for (let h = 0; h < H; h++) {
        for (const k of [1, 2, 3]) expect(p[(h * T + T - 1) * T + k]).toBe(0);
        let sum = 0;
        for (let k = 0; k < T; k++) sum += p[(h * T + T - 1) * T + k];
        expect(sum).toBeCloseTo(1, 5);
      }
      const lg = cut.logits!.data;
      const [viaRunner] = await runVariants(model, [{ ids, target: 7, edits }]);
      expect(viaRunner).toBeCloseTo(probOf(lg, 7), 6);
      const clean = (await model.run([ids], { logits: 'last' })).logits!.data;
      expect(Math.abs(probOf(clean, 7) - viaRunner)).toBeGreaterThan(1e-6); // the cut matters
    });

    if (fam.rotary) {
      it('cutting the last token off every earlier token in every layer = running it alone (rotary is relative)', async () => {
        const model = await Model.load(path.join(FIX, fam.fixture));
        const ids = [161, 71, 338, 280, 109, 92];
        const all = [...Array(model.nLayers).keys()];
        const [p] = await runVariants(model, [{ ids, target: 7, edits: attentionKnockoutEdits(all, ids.length - 1, [...Array(ids.length - 1).keys()]) }]);
        const alone = (await model.run([[ids[ids.length - 1]]], { logits: 'last' })).logits!.data;
        expect(p).toBeCloseTo(probOf(alone, 7), 6);
      });
    }
  });
}

describe('head-wise interventions under grouped-query attention (tiny-llama: 4 query, 2 key/value heads)', () => {
  it('attn.v heads index the key/value heads, attn.z heads the query heads', async () => {
    const model = await Model.load(path.join(FIX, 'tiny-llama'));
    const ids = [[161, 71, 338, 280, 109]];
    const res = await model.runWithHooks(ids, interventionHooks(model, [{ hook: 'layers.1.attn.v', heads: [1], op: 'zero' }, { hook: 'layers.2.attn.z', heads: [3], op: 'zero' }]), { cache: ['layers.1.attn.v', 'layers.2.attn.z'] });
    const v = res.cache.get('layers.1.attn.v'); // [1,2,T,16]
    const z = res.cache.get('layers.2.attn.z'); // [1,T,64]
    const half = v.size / 2;
    expect(maxAbs(v.data.subarray(half))).toBe(0);
    expect(maxAbs(v.data.subarray(0, half))).toBeGreaterThan(0);
    for (let t = 0; t < 5; t++) {
      expect(maxAbs(z.data.subarray(t * 64 + 48, t * 64 + 64))).toBe(0);
      expect(maxAbs(z.data.subarray(t * 64, t * 64 + 48))).toBeGreaterThan(0);
    }
    expect(() => interventionHooks(model, [{ hook: 'layers.1.attn.k', heads: [2], op: 'zero' }])).toThrow('intervention on layers.1.attn.k: head 2 is out of range 0..1');
  });
});
