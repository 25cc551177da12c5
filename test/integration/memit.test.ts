/**
 * MEMIT / EMMET on the demo models: one request at one layer equals ROME (EMMET exactly, MEMIT
 * scaled by G/(λ+G) with G = kᵀC⁻¹k, the λ weighting), a batch makes the model prefer every new
 * object while the original stays bit-identical, and the errors a user can make are reported.
 * The least-squares update itself is checked against its normal equations in memit-update.test.ts.
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { deltaWeight, rome } from '../../src/methods/rome/edit';
import { editSite } from '../../src/methods/rome/sites';
import { SecondMoment, secondMoments } from '../../src/methods/rome/stats';
import { computeKey } from '../../src/methods/rome/key';
import { dot } from '../../src/methods/rome/linalg';
import { memit, MemitOptions } from '../../src/methods/memit/memit';
import { loadCounterFact, knownRecords, editRequestOf, CounterFactRecord } from '../../src/data/counterfact';
import { scoreCase } from '../../src/methods/rome/counterfact-eval';
import { maxDiff } from '../support/max-diff';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');
const STATS = { samples: 3000, maxLength: 128, cache: false, progress: false } as const;
/** Small v* settings: 3 context templates, ≤ 10 steps. */
const FAST: MemitOptions = { templates: { lengths: [[5, 2]] }, steps: 10, stats: STATS };

const REQUEST = { prompt: '{} is located in the city of', subject: 'The Space Needle', target: 'Paris' };

describe('MEMIT with one request at one layer is ROME (neox-facts W_down)', () => {
  let model: Model;
  let stats: SecondMoment;
  const layer = 3;
  // One context template (the bare prompt): then ROME's k̄ and k_cur coincide, as do MEMIT's k̄ and
  // ROME's denominator key, and δ is optimised at the same hook (target 'module').
  const common = { templates: ['{}'], steps: 8 };
  beforeAll(async () => {
    model = await Model.load(path.join(MODELS, 'neox-facts'));
    [stats] = await secondMoments(model, [editSite(model, layer, 'W_down')], STATS);
  });

  it('EMMET (μ = 0) gives ROME\'s ΔW; MEMIT gives it times G/(λ+G)', async () => {
    const site = editSite(model, layer, 'W_down');
    const r = await rome(model, REQUEST, { ...common, layer, stats });
    const dRome = deltaWeight(r).data; // [D,F]
    const scale = dRome.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const e = await memit(model, [REQUEST], { ...common, layers: [layer], target: 'module', algorithm: 'emmet', stats: [stats] });
    const W = model.weight(site.weight).data;
    const dEmmet = e.model.weight(site.weight).data.map((x, i) => x - W[i]);
    expect(maxDiff(dEmmet, dRome)).toBeLessThan(1e-5 * scale);

    const lambda = 200;
    const m = await memit(model, [REQUEST], { ...common, layers: [layer], target: 'module', mom2UpdateWeight: lambda, stats: [stats] });
    const k = (await computeKey(model, site, REQUEST.prompt, REQUEST.subject, ['{}'])).kBar;
    const G = dot(k, await stats.solve(k));
    const dMemit = m.model.weight(site.weight).data.map((x, i) => x - W[i]);
    const expected = dRome.map((x) => (x * G) / (lambda + G));
    expect(G / (lambda + G)).toBeLessThan(0.99); // the weighting is visible at this λ
    expect(maxDiff(dMemit, expected)).toBeLessThan(1e-5 * scale);
    // The same δ: MEMIT reused ROME's v* optimisation step for step.
    expect(m.deltas[0].trace.map((s) => s.loss)).toEqual(r.diagnostics.trace.map((s) => s.loss));
  });
});

describe('MEMIT batches on the demo models', () => {
  let mamba: Model;
  let records: CounterFactRecord[];
  beforeAll(async () => {
    mamba = await Model.load(path.join(MODELS, 'mamba-facts'));
    records = (await knownRecords(mamba, loadCounterFact(), { limit: 4 })).slice(0, 4);
  });

  it('edits 4 facts at once over W_o layers 2–4, every rewrite succeeds, the original stays bit-identical', async () => {
    const prompts = records.map((r) => r.requested_rewrite.prompt.replace('{}', r.requested_rewrite.subject));
    const before = (await mamba.logits(prompts)).data.slice();
    const w0 = mamba.weight('layers.2.mixer.out_proj.weight').data.slice();
    const e = await memit(mamba, records.map(editRequestOf), { ...FAST, matrix: 'W_o', layers: [2, 3, 4] });
    expect(e.sites.map((s) => s.weight)).toEqual([2, 3, 4].map((l) => `layers.${l}.mixer.out_proj.weight`));
    for (const r of records) {
      expect((await scoreCase(mamba, r)).ES).toBe(0); // known facts: the true object wins before
      expect((await scoreCase(e.model, r)).ES).toBe(1);
    }
    // Layers share the residual: each later layer is asked for what the earlier ones left.
    expect(e.layers[0].residualNorm).toBeLessThan(e.layers[2].residualNorm * 3);
    const after = (await mamba.logits(prompts)).data;
    expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    expect(Buffer.from(mamba.weight('layers.2.mixer.out_proj.weight').data.buffer).equals(Buffer.from(w0.buffer))).toBe(true);
    expect(mamba.editedWeightNames()).toEqual([]);
    expect(e.model.editedWeightNames().sort()).toEqual(e.sites.map((s) => s.weight).sort());
  });

  it('edits W_g at one layer (δ at the gate itself) and reuses precomputed deltas exactly', async () => {
    const reqs = records.slice(0, 2).map(editRequestOf);
    const a = await memit(mamba, reqs, { ...FAST, matrix: 'W_g', layers: [3] });
    expect(a.target).toBe('module');
    for (const r of records.slice(0, 2)) expect((await scoreCase(a.model, r)).ES).toBe(1);
    const b = await memit(mamba, reqs, { ...FAST, matrix: 'W_g', layers: [3], deltas: a.deltas, steps: 1 });
    const w = 'layers.3.mixer.in_proj.weight';
    expect(Buffer.from(b.model.weight(w).data.buffer).equals(Buffer.from(a.model.weight(w).data.buffer))).toBe(true);
  });

  it('reports bad requests, layers, targets and statistics in one line', async () => {
    const req = editRequestOf(records[0]);
    await expect(memit(mamba, [])).rejects.toThrow(/non-empty array/);
    await expect(memit(mamba, [req], { ...FAST, layers: [3, 16] })).rejects.toThrow(/MEMIT layer 16 is out of range: mamba-facts has layers 0..15/);
    await expect(memit(mamba, [req], { ...FAST, layers: [3, 3] })).rejects.toThrow(/repeat a layer/);
    await expect(memit(mamba, [req], { ...FAST, matrix: 'W_a', layers: [3], target: 'residual' })).rejects.toThrow(/W_a does not write into the residual stream/);
    await expect(memit(mamba, [req], { ...FAST, matrix: 'W_down' })).rejects.toThrow(/W_down is not a matrix of mamba models/);
    await expect(memit(mamba, [req], { ...FAST, mom2UpdateWeight: -1, layers: [3] })).rejects.toThrow(/λ must be a finite number ≥ 0, got -1/);
    await expect(memit(mamba, [req], { ...FAST, layers: [2, 3], stats: [] })).rejects.toThrow(/0 statistics for 2 layers/);
    await expect(memit(mamba, [req], { ...FAST, matrix: 'W_a', layers: [2, 3], deltas: [] })).rejects.toThrow(/0 deltas for 1 requests/);
  });
});
