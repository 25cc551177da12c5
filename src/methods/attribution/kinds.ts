/**
 * The hook kinds an attribution covers: every per-layer hook of the architecture (docs/hooks.md)
 * except mixer.state (the engine has no gradient with respect to it). A kind's cells are
 * (layer, position); its units are channels for [B,T,X] hooks and heads for [B,H,T,X] hooks.
 */
import { FactlensError } from '../../errors';
import { hookDocs } from '../../runtime/hooks';
import type { Model } from '../../runtime/model';

export interface AttributionKind {
  /** The hook name without its layer, e.g. "mixer.ssm_out", "attn.pattern". */
  kind: string;
  /** 'head' for [B,H,T,X] hooks (position axis 2), 'channel' for [B,T,X] hooks. */
  unit: 'head' | 'channel';
}

export function attributionKinds(model: Model): AttributionKind[] {
  return hookDocs(model.arch, model.parallelResidual)
    .filter((d) => d.perLayer && d.local !== 'mixer.state')
    .map((d) => ({ kind: d.local, unit: /^\[B,H(kv)?,T,/.test(d.shape) ? 'head' : 'channel' })); // heads lead, then positions
}

/** The requested kinds (default all), each checked against the architecture. */
export function selectKinds(model: Model, names?: string[]): AttributionKind[] {
  const all = attributionKinds(model);
  if (!names) return all;
  if (!names.length) throw new FactlensError('attribution: kinds is empty (omit it for every kind)');
  return names.map((n) => {
    const k = all.find((x) => x.kind === n);
    if (!k) throw new FactlensError(`attribution: kind "${n}" is not a hook of ${model.arch} models (use ${all.map((x) => x.kind).join(', ')})`);
    return k;
  });
}

export const hookOf = (kind: string, layer: number) => `layers.${layer}.${kind}`;

/** The requested layers (default all), each checked. */
export function selectLayers(model: Model, layers?: number[]): number[] {
  const all = layers ?? [...Array(model.nLayers).keys()];
  for (const l of all) if (!(Number.isInteger(l) && l >= 0 && l < model.nLayers)) throw new FactlensError(`attribution: layer ${l} is out of range 0..${model.nLayers - 1}`);
  return all;
}
