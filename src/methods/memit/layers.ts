/**
 * MEMIT's layer range (docs/memit.md §3): GPT-J edits 6 of its 28 layers, ending at the layer where
 * causal tracing peaks (layers 3–8). Scaled to a model's depth, ending at ROME's default layer
 * (the paper's layer 15 of 64 for Mamba, 15 of 32 for Pythia).
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { defaultLayer } from '../rome/edit';

export function defaultLayers(model: Model): number[] {
  const last = defaultLayer(model);
  const count = Math.max(1, Math.min(last + 1, Math.round((6 * model.nLayers) / 28)));
  return Array.from({ length: count }, (_, i) => last - count + 1 + i);
}

/** Layers in increasing order, each once, each a layer of the model. */
export function checkLayers(model: Model, layers: number[]): number[] {
  if (!Array.isArray(layers) || !layers.length) throw new FactlensError('MEMIT layers: give at least one layer');
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= model.nLayers) throw new FactlensError(`MEMIT layer ${l} is out of range: ${model.name} has layers 0..${model.nLayers - 1}`);
  }
  const sorted = [...new Set(layers)].sort((a, b) => a - b);
  if (sorted.length !== layers.length) throw new FactlensError(`MEMIT layers [${layers}] repeat a layer`);
  return sorted;
}
