/**
 * Resuming a transformer run mid-sequence, the attention analogue of Mamba's state resume
 * (resume.ts): a run that changes nothing before position t at layers ≥ l can start at (l, t) from
 * the keys and values of positions < t, read from a cached run of the same tokens
 * (`layers.{l}.attn.k` / `attn.v`: after q/k norm and rotary, one per key/value head). The layer
 * stage then runs with the `kvCache` option (models/kv-cache.ts): keys are [past slots ; this run's
 * tokens], so the scores and softmax are those of the uncached graph over the same positions, with
 * masked slots at exactly zero weight. Rows of a batch may resume at different positions: row b's
 * first offsets[b] slots are real, the rest are padding masked out.
 */
import { FactlensError } from '../errors';
import { rotaryTables } from '../models/rotary';
import { slidingWindowAt } from '../models/attention-mask';
import { isSsmConfig } from '../models/ssm';
import type { ActivationCache } from './cache';
import type { Batch } from './batch';
import type { Model } from './model';
import { Tensor } from './tensor';

/** Keys and values of the positions before each row's start, per layer [B,Hkv,S,Dh] (layers below the start layer may be missing). */
export interface KvPast {
  k: Tensor[];
  v: Tensor[];
}

const MASKED = -1e9; // the forward's additive mask value

/** Cache names a transformer run must keep so that kvPastAt can resume it at any layer and position. */
export function kvResumeCacheNames(model: Model): string[] {
  requireAttention(model);
  return [...Array(model.nLayers).keys()].flatMap((l) => [`layers.${l}.resid_pre`, `layers.${l}.attn.k`, `layers.${l}.attn.v`]);
}

/** Keys and values of positions 0..position−1 at `layer`, row `row` of a cached run: each [1,Hkv,position,Dh] (copies). */
export function kvPastAt(model: Model, cache: ActivationCache, layer: number, position: number, row = 0): { k: Tensor; v: Tensor } {
  requireAttention(model);
  const slice = (name: string) => {
    const t = cache.get(`layers.${layer}.${name}`); // [B,Hkv,T,Dh]
    const [, hkv, T, dh] = t.shape;
    if (position > T) throw new FactlensError(`kvPastAt: position ${position} is beyond the cached run (${T} tokens)`);
    const out = new Float32Array(hkv * position * dh); // [1,Hkv,position,Dh]
    for (let h = 0; h < hkv; h++) out.set(t.data.subarray(((row * hkv + h) * T) * dh, ((row * hkv + h) * T + position) * dh), h * position * dh);
    return new Tensor(out, [1, hkv, position, dh]);
  };
  return { k: slice('attn.k'), v: slice('attn.v') };
}

/**
 * Per-row pasts stacked into one batch for layers from..L−1: [B,Hkv,S,Dh] with S the longest past
 * (at least 1 slot, so no tensor has a zero-sized axis); shorter rows are zero-padded (masked).
 */
export function stackPasts(B: number, from: number, L: number, pastAt: (layer: number, row: number) => { k: Tensor; v: Tensor }): KvPast {
  const past: KvPast = { k: [], v: [] };
  for (let l = from; l < L; l++) {
    const parts = Array.from({ length: B }, (_, b) => pastAt(l, b));
    const [, hkv, , dh] = parts[0].k.shape;
    const S = Math.max(1, ...parts.map((p) => p.k.shape[2]));
    const stack = (which: 'k' | 'v') => {
      const out = new Float32Array(B * hkv * S * dh); // [B,Hkv,S,Dh]
      parts.forEach((p, b) => {
        const n = p[which].shape[2];
        for (let h = 0; h < hkv; h++) out.set(p[which].data.subarray(h * n * dh, (h + 1) * n * dh), ((b * hkv + h) * S) * dh);
      });
      return new Tensor(out, [B, hkv, S, dh]);
    };
    past.k[l] = stack('k');
    past.v[l] = stack('v');
  }
  return past;
}

/**
 * Additive mask [B,1,T,S+T] over [S past slots ; T run tokens]: row b's query i sits at absolute
 * position offsets[b]+i and reads past slots j < offsets[b] and run tokens j' ≤ i before the row's
 * padding; a sliding window w also hides keys at absolute positions ≤ query − w.
 */
export function pastMask(lengths: readonly number[], offsets: readonly number[], S: number, T: number, window?: number): Float32Array {
  const B = lengths.length;
  const W = S + T;
  const mask = new Float32Array(B * T * W).fill(MASKED); // [B,1,T,S+T]
  const visible = (key: number, query: number) => window === undefined || key > query - window;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const query = offsets[b] + i;
      for (let j = 0; j < offsets[b]; j++) if (visible(j, query)) mask[(b * T + i) * W + j] = 0;
      for (let j = 0; j <= i && j < lengths[b]; j++) if (visible(offsets[b] + j, query)) mask[(b * T + i) * W + S + j] = 0;
    }
  }
  return mask;
}

/** Rotary tables [B,1,T,Rd] at each row's absolute positions offsets[b]..offsets[b]+T−1; none without rotary. */
export function ropeAt(model: Model, offsets: readonly number[], T: number): Record<string, Tensor> {
  const c = model.config;
  if (isSsmConfig(c) || !c.rotaryDims) return {}; // learned positions (GPT-2) enter with the embedding
  const positions = offsets.flatMap((o) => Array.from({ length: T }, (_, i) => o + i)); // row-major over B·T
  return ropeRows(rotaryTables(c, Math.max(...offsets) + T), c.rotaryDims, positions, offsets.length, T);
}

/** Rows of rotary tables ([positions,Rd] each) at the given positions (row-major over B·T): rope_cos/sin [B,1,T,Rd]. */
export function ropeRows(tables: { cos: Float32Array; sin: Float32Array }, rd: number, positions: readonly number[], B: number, T: number): Record<string, Tensor> {
  const cos = new Float32Array(B * T * rd); // [B,1,T,Rd]
  const sin = new Float32Array(B * T * rd); // [B,1,T,Rd]
  positions.forEach((p, i) => {
    cos.set(tables.cos.subarray(p * rd, (p + 1) * rd), i * rd);
    sin.set(tables.sin.subarray(p * rd, (p + 1) * rd), i * rd);
  });
  return { rope_cos: new Tensor(cos, [B, 1, T, rd]), rope_sin: new Tensor(sin, [B, 1, T, rd]) };
}

/** The layer inputs of a resumed run: per layer { past_k, past_v, attn_mask, rope_cos/sin } for the kvCache stage. */
export function pastLayerInputs(model: Model, batch: Batch, offsets: readonly number[], past: KvPast): (l: number) => Record<string, Tensor> {
  const { B, T } = batch;
  const rope = ropeAt(model, offsets, T);
  const masks = new Map<string, Tensor>(); // by (window, S): one mask for all layers alike
  return (l) => {
    const k = past.k[l];
    const v = past.v[l];
    if (!k || !v) throw new FactlensError(`past: no keys/values for layer ${l}`);
    const S = k.shape[2];
    if (k.shape[0] !== B || v.shape.join() !== k.shape.join()) {
      throw new FactlensError(`past at layer ${l}: keys [${k.shape}] and values [${v.shape}], expected [${B},Hkv,S,Dh] each`);
    }
    offsets.forEach((o, b) => {
      if (o > S) throw new FactlensError(`past: row ${b} resumes at position ${o} but the past holds ${S} slots at layer ${l}`);
    });
    const w = slidingWindowAt(model.config, l);
    const key = `${w}:${S}`;
    if (!masks.has(key)) masks.set(key, new Tensor(pastMask(batch.lengths, offsets, S, T, w), [B, 1, T, S + T]));
    return { past_k: k, past_v: v, attn_mask: masks.get(key)!, ...rope };
  };
}

function requireAttention(model: Model): void {
  if (model.recurrent) throw new FactlensError(`${model.name} is a ${model.arch} model: keys/values resume attention models (state-space models resume from their state, resume.ts)`);
}
