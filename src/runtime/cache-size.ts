/**
 * How many bytes a cache of given hook points will hold for a batch, from the documented shape of
 * each point (hooks.ts), before anything runs: so "cache every hook point" can refuse at once, with
 * the estimate, instead of running out of memory half-way through a forward pass.
 */
import * as os from 'os';
import { FactlensError } from '../errors';
import type { Batch } from './batch';
import { hookDocs, resolveHook } from './hooks';
import type { Model } from './model';
import { formatBytes } from './tensor-summary';
import { mamba2ShapeLetters } from '../models/mamba2';

/** Sizes of the shape letters of hooks.ts for this model and batch (P: read-out positions). */
function letterSizes(model: Model, batch: Batch, readout: number): Record<string, number> {
  const c = model.config;
  const common = { B: batch.B, T: batch.T, D: c.dModel, V: c.vocabSize, P: readout };
  if (c.arch === 'mamba2') return { ...common, ...mamba2ShapeLetters(c) };
  if (c.arch === 'mamba') return { ...common, E: c.dInner, N: c.dState };
  // GPT-NeoX has one key/value head per query head (its table declares attn.k/v as [B,Hkv,T,Dh] too).
  return { ...common, H: c.nHead, Dh: c.headDim, F: c.dFF, HDh: c.nHead * c.headDim, Hkv: c.arch === 'gpt_neox' ? c.nHead : c.nKvHeads };
}

/** Bytes of float32 activations the named hook points hold for `batch`. */
export function cacheBytes(model: Model, batch: Batch, names: string[], readout = batch.T): number {
  const sizes = letterSizes(model, batch, readout);
  const shapes = new Map(hookDocs(model.arch, model.parallelResidual).map((d) => [d.local, d.shape]));
  let total = 0;
  for (const n of names) {
    const { local } = resolveHook(n, model.arch, model.nLayers, model.parallelResidual);
    const letters = shapes.get(local)!.slice(1, -1).split(',');
    total += 4 * letters.reduce((p, l) => {
      if (sizes[l] === undefined) throw new Error(`cacheBytes: no size for shape letter ${l} of ${local} ${shapes.get(local)} on ${model.arch}`); // a registry/shape-table mismatch
      return p * sizes[l];
    }, 1);
  }
  return total;
}

/** Half the memory the OS reports free: room for the cache next to the run's own buffers. */
export const defaultCacheBudget = (): number => Math.floor(os.freemem() / 2);

/** Throw (naming the estimate and the budget) when caching `names` for `batch` would not fit. */
export function checkCacheFits(model: Model, batch: Batch, names: string[], budget: number, readout?: number): void {
  const need = cacheBytes(model, batch, names, readout);
  if (need > budget) {
    throw new FactlensError(`runWithCache: caching all ${names.length} hook points of ${model.name} for a batch of ${batch.B}×${batch.T} tokens needs about ${formatBytes(need)}, over the budget of ${formatBytes(budget)} (half the free memory; set maxCacheBytes to change it); pass the names to keep instead`);
  }
}
