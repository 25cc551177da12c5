/**
 * Interventions that pick what they touch by meaning: positions by subject string (resolved in each
 * row's own text, and in the source run for `source.position`), attention heads (`heads`) and
 * channels (`channels`); and specs built in variables, which must type-check without `as const`
 * (this file is type-checked by `tsc --noEmit -p .`).
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import { interventionHooks, InterventionSpec } from '../../src/runtime/interventions';
import { findSubject } from '../../src/data/find-subject';

const DEMO = path.join(__dirname, '..', '..', 'data', 'models');
const prompt = 'The capital city of France is';
const longer = 'The capital city of the country called France is';
const donorPrompt = 'The capital city of Italy is';

/** Entries of a and b that differ. */
function changed(a: Tensor, b: Tensor): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.size; i++) if (a.data[i] !== b.data[i]) out.push(i);
  return out;
}

describe('positions by subject (mamba-facts)', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(DEMO, 'mamba-facts'));
  });

  it('{ subjectLast } with a source { subjectLast } equals the same patch by index, per row', async () => {
    const donor = await model.runWithCache(donorPrompt, ['layers.2.mixer.out']);
    const rows = [prompt, longer];
    const bySubject = interventionHooks(model, [
      { hook: 'layers.2.mixer.out', positions: { subjectLast: 'France' }, op: 'replace', source: { cache: 'd', position: { subjectLast: 'Italy' } } },
    ], { caches: { d: donor.cache } });
    const from = findSubject(model, donorPrompt, 'Italy').last;
    const byIndex = interventionHooks(model, rows.map((text, b): InterventionSpec => (
      { hook: 'layers.2.mixer.out', rows: [b], positions: [findSubject(model, text, 'France').last], op: 'replace', source: { cache: 'd', position: from } })), { caches: { d: donor.cache } });
    expect(findSubject(model, rows[0], 'France').last).not.toBe(findSubject(model, rows[1], 'France').last); // the rows really differ
    const a = await model.runWithHooks(rows, bySubject, { cache: ['layers.2.mixer.out'] });
    const b = await model.runWithHooks(rows, byIndex, { cache: ['layers.2.mixer.out'] });
    const clean = await model.runWithCache(rows, ['layers.2.mixer.out']);
    expect(Array.from(a.logits!.data)).toEqual(Array.from(b.logits!.data));
    expect(changed(a.cache.get('layers.2.mixer.out'), clean.cache.get('layers.2.mixer.out')).length).toBeGreaterThan(0);
  });

  it('{ subject } touches every subject token and nothing else', async () => {
    const text = 'The Space Needle is located in the city of';
    const span = findSubject(model, text, 'Space Needle');
    const hooks = interventionHooks(model, [{ hook: 'layers.1.mixer.gate', positions: { subject: 'Space Needle' }, op: 'zero' }]);
    const run = await model.runWithHooks(text, hooks, { cache: ['layers.1.mixer.gate'] });
    const g = run.cache.get('layers.1.mixer.gate'); // [1,T,E]
    const E = g.shape[2];
    for (let t = 0; t < g.shape[1]; t++) {
      const zero = g.data.subarray(t * E, (t + 1) * E).every((x) => x === 0);
      expect(zero).toBe(span.positions.includes(t));
    }
    expect(span.positions.length).toBeGreaterThan(1);
    for (const [key, pos] of [['subjectFirst', span.first], ['subjectLast', span.last]] as const) {
      const one = interventionHooks(model, [{ hook: 'layers.1.mixer.gate', positions: { [key]: 'Space Needle' } as { subjectLast: string }, op: 'zero' }]);
      const r = (await model.runWithHooks(text, one, { cache: ['layers.1.mixer.gate'] })).cache.get('layers.1.mixer.gate');
      const zeroAt = [...Array(r.shape[1]).keys()].filter((t) => r.data.subarray(t * E, (t + 1) * E).every((x) => x === 0));
      expect(zeroAt).toEqual([pos]);
    }
  });

  it('a subject missing from a row fails in one line naming hook, row and prompt', async () => {
    const hooks = interventionHooks(model, [{ hook: 'layers.0.resid_post', positions: { subjectLast: 'France' }, op: 'zero' }]);
    await expect(model.runWithHooks([prompt, donorPrompt], hooks)).rejects.toThrow(
      'hook "layers.0.resid_post" (layer 0) threw FactlensError: intervention on layers.0.resid_post, row 1: the subject "France" does not occur in the prompt "The capital city of Italy is"');
  });

  it('channels: only the chosen channels of a Mamba hook change (values per channel or full width)', async () => {
    const clean = (await model.runWithCache(prompt, ['layers.3.mixer.gate'])).cache.get('layers.3.mixer.gate');
    const E = model.mambaConfig.dInner;
    const zeroed = await model.runWithHooks(prompt, interventionHooks(model, [{ hook: 'layers.3.mixer.gate', channels: [0, 5], op: 'zero' }]), { cache: ['layers.3.mixer.gate'] });
    const idx = changed(zeroed.cache.get('layers.3.mixer.gate'), clean);
    expect(new Set(idx.map((i) => i % E))).toEqual(new Set([0, 5]));
    expect(idx).toHaveLength(2 * clean.shape[1]);
    const set = await model.runWithHooks(prompt, interventionHooks(model, [{ hook: 'layers.3.mixer.gate', channels: [1, 2], positions: 'last', op: 'replace', value: [7, 8] }]), { cache: ['layers.3.mixer.gate'] });
    const g = set.cache.get('layers.3.mixer.gate');
    const last = (clean.shape[1] - 1) * E;
    expect([g.data[last + 1], g.data[last + 2]]).toEqual([7, 8]);
    expect(changed(g, clean)).toEqual([last + 1, last + 2]);
    expect(() => interventionHooks(model, [{ hook: 'layers.3.mixer.gate', channels: [E], op: 'zero' }])).not.toThrow(); // checked at run time, against the tensor
    await expect(model.runWithHooks(prompt, interventionHooks(model, [{ hook: 'layers.3.mixer.gate', channels: [E], op: 'zero' }]))).rejects.toThrow(`channel ${E} is out of range 0..${E - 1}`);
    expect(() => interventionHooks(model, [{ hook: 'layers.3.mixer.gate', heads: [0], op: 'zero' }])).toThrow('intervention on layers.3.mixer.gate: heads apply to attention hooks');
  });
});

describe('attention heads (neox-facts)', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(DEMO, 'neox-facts'));
  });

  it('heads on attn.z change only those heads\' slices, on attn.pattern only those heads', async () => {
    const H = model.neoxConfig.nHead;
    const Dh = model.neoxConfig.headDim;
    const names = ['layers.1.attn.z', 'layers.1.attn.pattern'];
    const clean = (await model.runWithCache(prompt, names)).cache;
    const z = await model.runWithHooks(prompt, interventionHooks(model, [{ hook: 'layers.1.attn.z', heads: [2, 5], op: 'zero' }]), { cache: names });
    const zi = changed(z.cache.get('layers.1.attn.z'), clean.get('layers.1.attn.z'));
    expect(new Set(zi.map((i) => Math.floor((i % (H * Dh)) / Dh)))).toEqual(new Set([2, 5]));
    expect(z.cache.get('layers.1.attn.z').data.subarray(2 * Dh, 3 * Dh).every((x) => x === 0)).toBe(true);
    const p = await model.runWithHooks(prompt, interventionHooks(model, [{ hook: 'layers.1.attn.pattern', heads: [3], positions: 'last', op: 'scale', factor: 0 }]), { cache: names });
    const T = model.encode(prompt).length;
    const pi = changed(p.cache.get('layers.1.attn.pattern'), clean.get('layers.1.attn.pattern')); // [1,H,T,T]
    expect(pi.length).toBeGreaterThan(0);
    expect(pi.every((i) => Math.floor(i / (T * T)) === 3 && Math.floor((i % (T * T)) / T) === T - 1)).toBe(true);
    const zc = await model.runWithHooks(prompt, interventionHooks(model, [{ hook: 'layers.1.attn.z', heads: [1], channels: [0], op: 'zero' }]), { cache: names });
    expect(new Set(changed(zc.cache.get('layers.1.attn.z'), clean.get('layers.1.attn.z')).map((i) => i % (H * Dh)))).toEqual(new Set([Dh]));
  });

  it('rejects heads out of range and heads on non-attention hooks', () => {
    const H = model.neoxConfig.nHead;
    expect(() => interventionHooks(model, [{ hook: 'layers.1.attn.z', heads: [H], op: 'zero' }])).toThrow(`intervention on layers.1.attn.z: head ${H} is out of range 0..${H - 1}`);
    expect(() => interventionHooks(model, [{ hook: 'layers.1.mlp.out', heads: [0], op: 'zero' }])).toThrow(/heads apply to attention hooks/);
  });
});

describe('specs built in variables', () => {
  it('type-check without `as const` and are validated when the hooks are built', async () => {
    const model = await Model.load(path.join(DEMO, 'mamba-facts'));
    // Widened to string by TypeScript: these lines are what must compile.
    const spec = { hook: 'layers.{layer}.mixer.out', layers: [0, 1], positions: 'last', op: 'zero' };
    const bySubject = { hook: 'layers.2.resid_post', positions: { subjectLast: 'France' }, op: 'scale', factor: 0.5 };
    const specs = [spec, bySubject];
    expect(interventionHooks(model, specs).map(([n]) => n)).toEqual(['layers.0.mixer.out', 'layers.1.mixer.out', 'layers.2.resid_post']);
    const typo = { hook: 'layers.2.resid_post', op: 'zeroo' };
    expect(() => interventionHooks(model, [typo])).toThrow('intervention on layers.2.resid_post: unknown op "zeroo" (one of replace, add, zero, mean, scale, noise)');
    const badPositions = { hook: 'layers.2.resid_post', positions: 'first', op: 'zero' };
    expect(() => interventionHooks(model, [badPositions])).toThrow(`intervention on layers.2.resid_post: positions must be number[], 'all', 'last' or { subjectLast: S }, got "first"`);
    const badSubject = { hook: 'layers.2.resid_post', positions: { subjectMiddle: 'France' }, op: 'zero' };
    expect(() => interventionHooks(model, [badSubject as unknown as InterventionSpec])).toThrow(/positions by subject are \{ subject: S \}/);
  });
});
