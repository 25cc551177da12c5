/**
 * Where an LRE reads h and z, per architecture (paper-spec §4.1).
 *
 * Everything is phrased in "streams": stream k is the residual stream
 * entering layer k (stream 0 = the embedding output, stream L = the output of
 * the last layer, before the final norm).
 *
 * - Mamba (the official implementation's "residual" output of layer ℓ): h at
 *   layer ℓ = the stream ENTERING block ℓ = stream ℓ; "emb" = stream 0 (so for
 *   Mamba "emb" and layer 0 are the same state). z = the stream entering the
 *   last block = stream L−1 (the paper notes this ignores the last block).
 * - GPT-NeoX / Pythia: h at layer ℓ = the output of layer ℓ = stream ℓ+1;
 *   "emb" = stream 0. z = the output of the last layer = stream L.
 *
 * In both, z is decoded with the final norm and the unembedding (model.unembed).
 */
import { isSsmConfig } from '../../models/ssm';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';

/** A layer as the paper names it: "emb" or a layer index. */
export type LreLayer = 'emb' | number;

/** The stream index of h at `layer`. */
export function hStream(model: Model, layer: LreLayer): number {
  const L = model.nLayers;
  if (layer === 'emb') return 0;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new FactlensError(`LRE layer ${layer} is out of range: use "emb" or 0..${L - 1}`);
  return isSsmConfig(model.config) ? layer : layer + 1;
}

/** The stream index of z. */
export function zStream(model: Model): number {
  return isSsmConfig(model.config) ? model.nLayers - 1 : model.nLayers;
}

/** A hook name that reads (and may rewrite) stream k. */
export function streamHook(model: Model, k: number): string {
  const L = model.nLayers;
  if (k < 0 || k > L) throw new FactlensError(`stream ${k} is out of range 0..${L}`);
  return k < L ? `layers.${k}.resid_pre` : `layers.${L - 1}.resid_post`;
}

/** The paper's layer list: emb plus every layer (Mamba: emb ≡ 0, so it starts at 0). */
export function lreLayers(model: Model, step = 1): LreLayer[] {
  const layers: LreLayer[] = isSsmConfig(model.config) ? [] : ['emb'];
  for (let l = 0; l < model.nLayers; l += step) layers.push(l);
  return layers;
}

export function layerLabel(layer: LreLayer): string {
  return layer === 'emb' ? 'emb' : String(layer);
}
