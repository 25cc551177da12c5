/**
 * Attention with a key/value cache, for whole-stack decoding (runtime/decoder.ts). Built only when
 * the stage option `kvCache` is set; then a layer's attention also reads
 *   past_k, past_v [B,Hkv,S,Dh]  keys/values of S earlier cache slots (some may be masked padding),
 *   attn_mask      [B,1,T,S+T]   additive mask over [cache slots ; this run's tokens],
 *   rope_cos/sin   [B,1,T,Rd]    rotary tables at each row's own positions,
 * and returns this run's keys and values (outputs k_new, v_new [B,Hkv,T,Dh]) for the caller to
 * store. Keys are the cache then the new tokens, so the scores and softmax are the ones the
 * uncached graph computes over the same positions (masked slots get exactly zero weight).
 */
import type { Dim, Graph, Value } from '../graph/ir';
import type { StageIO } from '../runtime/stage';

/** Rotary tables: one row per position [T,Rd], or per batch row and position [B,1,T,Rd] with a cache. */
export const ropeShape = (io: StageIO, rd: number): Dim[] => (io.options.kvCache ? ['B', 1, 'T', rd] : ['T', rd]);

/** The additive mask over keys: [B,1,T,T], or [B,1,T,S+T] when the keys include the cache. */
export const maskShape = (io: StageIO): Dim[] => ['B', 1, 'T', io.options.kvCache ? 'S+T' : 'T'];

/** Keys (`which` 'k') or values ('v') of this run [B,Hkv,T,Dh], prefixed with the cached ones when there is a cache. */
export function withCache(g: Graph, io: StageIO, which: 'k' | 'v', x: Value): Value {
  if (!io.options.kvCache) return x;
  const [, hkv, , dh] = x.shape;
  const past = io.act(`past_${which}`, ['B', hkv, 'S', dh]); // [B,Hkv,S,Dh]
  io.out(`${which}_new`, x); // [B,Hkv,T,Dh]
  return g.concat([past, x], 2); // [B,Hkv,S+T,Dh]
}
