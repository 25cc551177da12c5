/**
 * ROME's defining identities, for each editable matrix (Mamba W_a, W_g, W_o on mamba-facts, Pythia
 * W_down on neox-facts): after the edit, W′k* = v* (k* the bare prompt's key at the subject's last
 * token, v* the optimised value), read both from the edited model's own forward pass and computed
 * from the edited weights; and the edit changes nothing for keys orthogonal to C⁻¹k̄ (ΔW is rank one
 * along u ∝ C⁻¹k̄, with C and k̄ computed here independently of the edit).
 * The identity holds whatever v* the optimiser reached, so a few steps suffice.
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { rng } from '../../src/runtime/generate';
import { rome } from '../../src/methods/rome/edit';
import { computeKey } from '../../src/methods/rome/key';
import { editSite, EditMatrix } from '../../src/methods/rome/sites';
import { secondMoment } from '../../src/methods/rome/stats';
import { subjectTokens } from '../../src/methods/rome/subject';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');
const TEMPLATES = ['{}', 'Yesterday it rained. {}', 'In the news: {}'];
const STATS = { samples: 2000, maxLength: 128, cache: false, progress: false } as const;

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  return Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
};

const CASES: Array<{ model: string; matrix: EditMatrix; layer: number; template: string; subject: string; target: string }> = [
  { model: 'mamba-facts', matrix: 'W_a', layer: 4, template: '{} is located in the city of', subject: 'Big Ben', target: 'Rome' },
  { model: 'mamba-facts', matrix: 'W_g', layer: 4, template: '{} is located in the city of', subject: 'Big Ben', target: 'Rome' },
  { model: 'mamba-facts', matrix: 'W_o', layer: 4, template: '{} is located in the city of', subject: 'Big Ben', target: 'Rome' },
  { model: 'neox-facts', matrix: 'W_down', layer: 3, template: '{} is located in the city of', subject: 'The Space Needle', target: 'Paris' },
];

const models = new Map<string, Model>();
beforeAll(async () => {
  for (const name of ['mamba-facts', 'neox-facts']) models.set(name, await Model.load(path.join(MODELS, name)));
});

describe('ROME identities', () => {
  for (const c of CASES) {
    it(`${c.model} ${c.matrix}: W′k* = v*, and keys orthogonal to C⁻¹k̄ are mapped as before`, async () => {
      const model = models.get(c.model)!;
      const site = editSite(model, c.layer, c.matrix);
      const stats = await secondMoment(model, site, STATS);
      const e = await rome(model, { prompt: c.template, subject: c.subject, target: c.target }, { layer: c.layer, matrix: c.matrix, templates: TEMPLATES, stats, steps: 4 });
      const vStar = e.vStar; // [valueDim]
      // v* is not the value the unedited model already gives (else the identity would be vacuous).
      const bare = subjectTokens(model, c.template, c.subject);
      const read = async (m: Model) => {
        const r = await m.run([bare.ids], { cache: [site.keyHook, site.valueHook], logits: 'none', untilLayer: c.layer + 1 });
        const at = (hook: string, width: number) => r.cache.get(hook).data.slice(bare.last * width, (bare.last + 1) * width);
        return { k: at(site.keyHook, site.keyDim), v: at(site.valueHook, site.valueDim) };
      };
      const before = await read(model);
      const after = await read(e.model);
      const scale = maxAbs(vStar);
      expect(maxDiff(before.v, vStar) / scale, 'the edit moves the value').toBeGreaterThan(1e-2);

      // The key is upstream of the edited matrix: unchanged. The value the edited model computes is v*.
      expect(maxDiff(after.k, before.k)).toBe(0);
      expect(maxDiff(after.v, vStar) / scale).toBeLessThan(1e-4);

      // The same identity from the edited weights (float64): W′[rows] k* (+ b) = v*.
      const W1 = e.model.weight(site.weight); // [out,in]
      const W0 = model.weight(site.weight); // [out,in]
      const inDim = W1.shape[1];
      const [r0, r1] = site.rows;
      const bias = site.bias ? e.model.weight(site.bias).data : null; // [out]
      const apply = (W: Float32Array, x: ArrayLike<number>) =>
        Float64Array.from({ length: r1 - r0 }, (_, i) => {
          let s = bias ? bias[i] : 0;
          for (let j = 0; j < inDim; j++) s += W[(r0 + i) * inDim + j] * x[j];
          return s;
        });
      expect(maxDiff(apply(W1.data, after.k), vStar) / scale).toBeLessThan(1e-4);

      // Orthogonal to C⁻¹k̄ (computed here from C and k̄, not taken from the edit): ΔW x = 0.
      const { kBar } = await computeKey(model, site, c.template, c.subject, TEMPLATES);
      const cInvK = await stats.solve(kBar); // [keyDim]
      const r = rng(5);
      const x = Float64Array.from({ length: inDim }, () => r() - 0.5); // [keyDim]
      const along = x.reduce((s, xi, i) => s + xi * cInvK[i], 0) / cInvK.reduce((s, v) => s + v * v, 0);
      const xPerp = x.map((xi, i) => xi - along * cInvK[i]); // [keyDim], ⟂ C⁻¹k̄
      const d = (xs: ArrayLike<number>) => {
        const a = apply(W1.data, xs);
        const b = apply(W0.data, xs);
        return a.map((v, i) => v - b[i]); // ΔW xs
      };
      const xNorm = Math.hypot(...xPerp);
      const cNorm = Math.hypot(...cInvK);
      // Along C⁻¹k̄ itself ΔW gives w‖C⁻¹k̄‖ (u = C⁻¹k̄/‖C⁻¹k̄‖, sign included).
      const wScaled = Array.from(e.delta.w, (wi) => wi * cNorm); // [valueDim]
      const dAlong = maxAbs(wScaled);
      expect(dAlong, 'the edit changes the output along C⁻¹k̄').toBeGreaterThan(1e-3);
      expect(maxDiff(d(cInvK), wScaled) / dAlong).toBeLessThan(1e-4);
      // Relative to what the same-length key along C⁻¹k̄ changes: float32 rounding of W′ only.
      expect(maxAbs(d(xPerp)) / xNorm / (dAlong / cNorm)).toBeLessThan(1e-4);
    }, 120_000);
  }
});
