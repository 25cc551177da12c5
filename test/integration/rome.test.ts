/**
 * ROME edits on the demo models: an edit makes the model prefer the new object, an unrelated
 * known fact keeps its top-1, the original model's logits stay bit-identical (restore is free),
 * sequential edits hold, the errors a user can make are reported, and the gradient of the v*
 * objective matches finite differences.
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { rng } from '../../src/runtime/generate';
import { rome, romeSequential, deltaWeight, RomeOptions } from '../../src/methods/rome/edit';
import { editSite } from '../../src/methods/rome/sites';
import { subjectTokens, asTemplate } from '../../src/methods/rome/subject';
import { contextTemplates } from '../../src/methods/rome/templates';
import { valueObjective } from '../../src/methods/rome/value';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');

/** Small settings so an edit takes seconds: 3 context templates, ≤ 12 steps, C from 3,000 tokens. */
const FAST: RomeOptions = { templates: { lengths: [[5, 2]] }, steps: 12, stats: { samples: 3000, maxLength: 128, cache: false, progress: false } };

async function top1(model: Model, prompt: string): Promise<string> {
  const l = (await model.logits(prompt, { last: true })).data;
  let best = 0;
  for (let v = 1; v < l.length; v++) if (l[v] > l[best]) best = v;
  return model.decode([best]);
}

describe('ROME on neox-facts (W_down)', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(MODELS, 'neox-facts'));
  });

  it('makes the model prefer the new object, keeps an unrelated fact, and leaves the original bit-identical', async () => {
    const prompt = 'The Space Needle is located in the city of';
    expect(await top1(model, prompt)).toBe(' Seattle');
    const before = (await model.logits([prompt, 'The Colosseum is located in the city of'])).data.slice();
    const e = await rome(model, { prompt, subject: 'The Space Needle', target: 'Paris' }, { ...FAST, layer: 3 });
    expect(e.site.weight).toBe('layers.3.mlp.dense_4h_to_h.weight');
    expect(await top1(e.model, prompt)).toBe(' Paris');
    expect(await top1(e.model, 'The Colosseum is located in the city of')).toBe(' Rome');
    // Restore = use the original object: its logits are bit-identical to before the edit.
    const after = (await model.logits([prompt, 'The Colosseum is located in the city of'])).data;
    expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    // Diagnostics: a loss trace that falls, the clamp respected, a rank-one ΔW of the right shape.
    const tr = e.diagnostics.trace;
    expect(tr[tr.length - 1].nll).toBeLessThan(tr[0].nll / 10);
    expect(e.diagnostics.deltaNorm).toBeLessThanOrEqual(3 * e.diagnostics.vInitNorm * (1 + 1e-5));
    expect(deltaWeight(e).shape).toEqual([256, 1024]);
    expect(e.diagnostics.subjectTokens.tokens.join('')).toBe('The Space Needle');
  });

  it('applies edits in sequence (each on the previous view) and offers the Rebuilding-ROME update', async () => {
    const [a, b] = await romeSequential(model, [
      { prompt: '{} is located in the city of', subject: 'The Space Needle', target: 'Paris' },
      { prompt: '{} is located in the city of', subject: 'The Colosseum', target: 'Tokyo', trueTarget: 'Rome' },
    ], { ...FAST, layer: 3 });
    expect(await top1(b.model, 'The Space Needle is located in the city of')).toBe(' Paris');
    expect(await top1(b.model, 'The Colosseum is located in the city of')).toBe(' Tokyo');
    expect(await top1(a.model, 'The Colosseum is located in the city of')).toBe(' Rome');
    const r = await rome(model, { prompt: 'The Space Needle is located in the city of', subject: 'The Space Needle', target: 'Paris' }, { ...FAST, layer: 3, variant: 'r-rome' });
    expect(r.diagnostics.variant).toBe('r-rome');
    expect(await top1(r.model, 'The Space Needle is located in the city of')).toBe(' Paris');
  });

  it('reports the errors a user can make', async () => {
    const ok = { prompt: 'The Space Needle is located in the city of', subject: 'The Space Needle', target: 'Paris' };
    await expect(rome(model, { ...ok, subject: 'Big Ben' }, FAST)).rejects.toThrow(/subject "Big Ben" is not in the prompt/);
    await expect(rome(model, { ...ok, target: '  ' }, FAST)).rejects.toThrow(/target .* is empty/);
    await expect(rome(model, ok, { ...FAST, layer: 8 })).rejects.toThrow(/layer 8 is out of range.*0\.\.7/);
    await expect(rome(model, ok, { ...FAST, matrix: 'W_o' })).rejects.toThrow(/W_o is not a matrix of gpt_neox/);
    await expect(rome(model, { ...ok, target: 'Seattle', trueTarget: 'Seattle' }, FAST)).rejects.toThrow(/equals the true object/);
    await expect(rome(model, { ...ok, target: 'Seattle' }, FAST)).rejects.toThrow(/already completes .*Seattle/);
  });

  it('samples 21 context templates with the paper lengths, seeded and cached', async () => {
    const t = await contextTemplates(model);
    expect(t.length).toBe(21);
    expect(t[0]).toBe('{}');
    expect(t.slice(1).every((s) => s.endsWith('. {}') && s.split('{}').length === 2)).toBe(true);
    expect(await contextTemplates(model)).toBe(t);
  });
});

describe('ROME on mamba-facts (W_o, W_a, W_g)', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(MODELS, 'mamba-facts'));
  });

  it('edits W_o and W_g so the new object wins, leaving unrelated facts', async () => {
    const prompt = 'Big Ben is located in the city of';
    expect(await top1(model, prompt)).toBe(' London');
    for (const [matrix, layer] of [['W_o', 4], ['W_g', 3]] as const) {
      const e = await rome(model, { prompt, subject: 'Big Ben', target: 'Rome' }, { ...FAST, layer, matrix });
      expect(e.site.rows).toEqual(matrix === 'W_g' ? [512, 1024] : [0, 256]);
      expect(await top1(e.model, prompt)).toBe(' Rome');
      expect(await top1(e.model, 'Michael Jordan professionally played the sport of')).toBe(' basketball');
      expect(await top1(e.model, 'The mother tongue of Danielle Darrieux is')).toBe(' French');
    }
  });

  it('edits only the x half of in_proj for W_a', async () => {
    const e = await rome(model, { prompt: 'Big Ben is located in the city of', subject: 'Big Ben', target: 'Rome' }, { ...FAST, layer: 4, matrix: 'W_a' });
    const W0 = model.weight('layers.4.mixer.in_proj.weight').data;
    const W1 = e.model.weight('layers.4.mixer.in_proj.weight').data;
    const changed = (from: number, to: number) => W0.subarray(from, to).some((x, i) => x !== W1[from + i]);
    expect(changed(0, 512 * 256)).toBe(true);
    expect(changed(512 * 256, 1024 * 256)).toBe(false);
    expect(e.diagnostics.trace[e.diagnostics.trace.length - 1].prob).toBeGreaterThan(0.5);
  });

  it('the v* objective gradient matches central finite differences (NLL + KL + weight decay)', async () => {
    const site = editSite(model, 5, 'W_g');
    const contexts = ['{}', 'He said that. {}'];
    const obj = await valueObjective(model, site, '{} is located in the city of', 'Big Ben', model.encode(' Rome'), contexts);
    const r = rng(11);
    const delta = Float32Array.from({ length: site.valueDim }, () => (r() - 0.5) * 0.4);
    const e = await obj.evaluate(delta);
    expect(e.kl).toBeGreaterThan(0);
    expect(e.weightDecay).toBeGreaterThan(0);
    for (const seed of [1, 2]) {
      const rr = rng(seed);
      const v = Float32Array.from({ length: site.valueDim }, () => rr() - 0.5);
      const eps = 1e-2;
      const plus = await obj.evaluate(delta.map((x, i) => x + eps * v[i]));
      const minus = await obj.evaluate(delta.map((x, i) => x - eps * v[i]));
      const fd = (plus.loss - minus.loss) / (2 * eps);
      const an = e.grad.reduce((s, g, i) => s + g * v[i], 0);
      expect(Math.abs(fd), 'the derivative is large enough that a zero or 10%-scaled gradient fails').toBeGreaterThan(10 * (2e-3 + 1e-2 * Math.abs(an)));
      expect(Math.abs(fd - an)).toBeLessThan(2e-3 + 1e-2 * Math.abs(an));
    }
  });

  it('locates the subject tokens and turns filled prompts into templates', () => {
    const st = subjectTokens(model, '{} is located in the city of', 'Big Ben');
    expect(model.decode(st.ids.slice(st.first, st.last + 1))).toBe('Big Ben');
    expect(st.exact).toBe(true);
    const mid = subjectTokens(model, 'He said that. {} is a', 'The Space Needle');
    expect(model.decode(mid.ids.slice(mid.first, mid.last + 1)).trim()).toBe('The Space Needle');
    expect(asTemplate('The Space Needle is in', 'The Space Needle')).toBe('{} is in');
    expect(() => asTemplate('{} and {} are', 'x')).toThrow(/exactly one "{}"/);
  });
});
