/**
 * Resuming runs mid-sequence (Mamba's state, a transformer's keys/values) and mid-model: a patched sweep that
 * skips the layers and positions its patch cannot change gives the same
 * numbers as full runs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { sweep } from '../../src/runtime/sweep';
import { mambaStateAt, resumeCacheNames } from '../../src/runtime/resume';
import { ActivationCache } from '../../src/runtime/cache';
import { kvPastAt, kvResumeCacheNames } from '../../src/runtime/kv-past';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');

for (const name of ['mamba-facts', 'neox-facts']) {
  describe(`resumed sweeps on ${name}`, () => {
    let model: Model;
    let clean: number[];
    let corrupt: number[];
    let cleanCache: ActivationCache;
    let corruptCache: ActivationCache;
    beforeAll(async () => {
      model = await Model.load(path.join(MODELS, name));
      clean = model.encode('The Eiffel Tower is located in the city of');
      corrupt = model.encode('The Space Needle is located in the city of');
      expect(corrupt.length).toBe(clean.length);
      const names = model.recurrent ? resumeCacheNames(model) : kvResumeCacheNames(model);
      cleanCache = (await model.runWithCache([clean], [...names, ...[...Array(model.nLayers).keys()].map((l) => `layers.${l}.resid_post`)])).cache;
      corruptCache = (await model.runWithCache([corrupt], names)).cache;
    });

    it('skipping unchanged layers and earlier positions changes no number', async () => {
      const grid = [];
      for (const layer of [0, 3, 6]) for (const pos of [0, 2, 5, clean.length - 1]) grid.push({ layer, pos });
      const base = {
        input: corrupt,
        interventions: (r: Record<string, unknown>) => [{ hook: `layers.${r.layer}.resid_post`, positions: [r.pos as number], op: 'replace' as const, source: { cache: 'clean' } }],
        metric: (logits: Float32Array) => ({ top: logits.indexOf(Math.max(...logits)), l0: logits[0], l1: logits[1234] }),
        caches: { clean: cleanCache },
        batchSize: 5,
      };
      const full = (await sweep(model, grid, base)).objects();
      const resumed = (await sweep(model, grid, {
        ...base,
        prefix: {
          startLayer: (r) => r.layer as number,
          resid: (l) => corruptCache.get(`layers.${l}.resid_pre`),
          startPosition: (r) => r.pos as number,
          state: model.recurrent ? (l, p) => mambaStateAt(model, corruptCache, l, p) : undefined,
          past: model.recurrent ? undefined : (l, p) => kvPastAt(model, corruptCache, l, p),
        },
      })).objects();
      expect(resumed.length).toBe(full.length);
      full.forEach((f: any, i) => {
        const r = resumed[i] as any;
        expect(r.layer).toBe(f.layer);
        expect(r.pos).toBe(f.pos);
        expect(Math.abs(r.l0 - f.l0)).toBeLessThan(1e-4);
        expect(Math.abs(r.l1 - f.l1)).toBeLessThan(1e-4);
      });
      // The patch matters somewhere (the test would pass vacuously otherwise).
      const spread = Math.max(...full.map((f: any) => f.l1)) - Math.min(...full.map((f: any) => f.l1));
      expect(spread).toBeGreaterThan(1e-2);
    });
  });
}
