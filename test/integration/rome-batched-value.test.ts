/**
 * v* batched over requests (rome/value.ts optimizeValues): each request keeps its own δ, Adam state
 * and early stop, so its result equals its one-request run (optimizeValue) to float32 precision —
 * on mamba-facts (W_o, W_a) and neox-facts (W_down), with requests that stop at different steps, and
 * when the token budget splits them into chunks.
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { optimizeValue, optimizeValues, ValueResult } from '../../src/methods/rome/value';
import { editSite, EditMatrix } from '../../src/methods/rome/sites';
import { evaluateEdits } from '../../src/methods/rome/evaluate';
import { knownRecords, loadCounterFact } from '../../src/data/counterfact';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');
const TEMPLATES = ['{}', 'Yesterday it rained. {}', 'In the news: {}'];
const FACTS = [
  { subject: 'Big Ben', target: ' Rome' },
  { subject: 'The Colosseum', target: ' London' },
  { subject: 'Big Ben', target: ' Buenos Aires' },
  { subject: 'The Colosseum', target: ' Sydney' },
];
/** A high probability threshold checked from step 2: the requests stop between steps 4 and 16. */
const OPTS = { steps: 16, stopProbAfter: 1, stopProb: 0.99 } as const;

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

const models = new Map<string, Model>();
beforeAll(async () => {
  for (const name of ['mamba-facts', 'neox-facts']) models.set(name, await Model.load(path.join(MODELS, name)));
});

/**
 * Largest |Δv*| relative to max |δ|, over requests; trace lengths and stop reasons must agree, and
 * the first step's loss (δ = 0) to float32 rounding. ONNX Runtime's kernels round differently at
 * other batch shapes (~1e-7 relative at δ = 0), and Adam's normalised steps amplify that over the
 * steps, so v* agrees to ~3e-5 of max |δ| on Mamba (~2e-6 on NeoX), not bit for bit.
 */
function compare(batched: ValueResult[], single: ValueResult[]): number {
  expect(batched.length).toBe(single.length);
  return Math.max(...batched.map((b, j) => {
    const s = single[j];
    expect(b.trace.length, `request ${j}: steps`).toBe(s.trace.length);
    expect(b.stopReason, `request ${j}: stop reason`).toBe(s.stopReason);
    expect(Math.abs(b.trace[0].loss - s.trace[0].loss) / s.trace[0].loss, `request ${j}: loss at δ = 0`).toBeLessThan(1e-5);
    return maxDiff(b.vStar, s.vStar) / maxAbs(s.delta);
  }));
}

const CASES: Array<{ model: string; matrix: EditMatrix; layer: number; chunked?: boolean }> = [
  { model: 'mamba-facts', matrix: 'W_o', layer: 4, chunked: true },
  { model: 'mamba-facts', matrix: 'W_a', layer: 4 },
  { model: 'neox-facts', matrix: 'W_down', layer: 3, chunked: true },
];

describe('optimizeValues: batched v* equals the one-request runs', () => {
  for (const c of CASES) {
    it(`${c.model} ${c.matrix}@${c.layer}`, async () => {
      const model = models.get(c.model)!;
      const site = editSite(model, c.layer, c.matrix);
      const requests = FACTS.map((f) => ({ template: '{} is located in the city of', subject: f.subject, targetIds: model.encode(f.target) }));
      const single: ValueResult[] = [];
      for (const q of requests) single.push(await optimizeValue(model, site, q.template, q.subject, q.targetIds, TEMPLATES, OPTS));
      // The requests stop at different steps, so some δs are frozen while others still move.
      expect(new Set(single.map((s) => s.trace.length)).size, 'stop steps differ').toBeGreaterThan(1);
      const steps: number[][] = FACTS.map(() => []);
      const batched = await optimizeValues(model, site, requests, TEMPLATES, { ...OPTS, onStep: (s, j) => steps[j].push(s.step) });
      const rel = compare(batched, single);
      console.log(`${c.model} ${c.matrix}: max |Δv*| / max |δ| = ${rel.toExponential(2)}`);
      expect(rel).toBeLessThan(1e-4);
      steps.forEach((s, j) => expect(s).toEqual(single[j].trace.map((t) => t.step)));
      if (!c.chunked) return;
      // A budget of 100 tokens holds one request (4 rows of ≤ 16 tokens) per chunk.
      const chunked = await optimizeValues(model, site, requests, TEMPLATES, { ...OPTS, batchTokens: 100 });
      expect(compare(chunked, single)).toBeLessThan(1e-4);
    });
  }

  it('evaluateEdits (the layer sweep) scores the same edits with batched and one-by-one v*', async () => {
    const model = models.get('neox-facts')!;
    const records = (await knownRecords(model, loadCounterFact().slice(0, 40))).slice(0, 3);
    const settings = { layer: 3, templates: TEMPLATES, steps: 8, mom2Adjustment: false, progress: false } as const;
    const one = await evaluateEdits(model, records, { ...settings, valueBatch: 1 });
    const all = await evaluateEdits(model, records, { ...settings, valueBatch: 3 });
    all.cases.forEach((c, i) => {
      const o = one.cases[i];
      expect(c.steps).toBe(o.steps);
      expect(Math.abs(c.vStarProb - o.vStarProb)).toBeLessThan(1e-4);
      expect(Math.abs(c.rewrite.nllNew - o.rewrite.nllNew)).toBeLessThan(1e-3 * Math.abs(o.rewrite.nllNew));
      expect([c.ES, c.PS, c.NS]).toEqual([o.ES, o.PS, o.NS]);
    });
    await expect(evaluateEdits(model, records, { ...settings, valueBatch: 0 })).rejects.toThrow(/valueBatch/);
  });

  it('rejects a bad token budget and an empty request list, naming the argument', async () => {
    const model = models.get('neox-facts')!;
    const site = editSite(model, 3, 'W_down');
    const q = [{ template: '{} is in', subject: 'Big Ben', targetIds: model.encode(' Rome') }];
    await expect(optimizeValues(model, site, q, TEMPLATES, { batchTokens: 0 })).rejects.toThrow(/batchTokens/);
    await expect(optimizeValues(model, site, [], TEMPLATES)).rejects.toThrow(/requests/);
    await expect(optimizeValues(model, site, [{ ...q[0], targetIds: [] }], TEMPLATES)).rejects.toThrow(/request 0/);
  });
});
