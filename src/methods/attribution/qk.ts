/**
 * AtP*'s correction for queries and keys (Kramár et al. 2024, §3.1.1): the linear estimate through
 * the attention softmax fails when a patch saturates it, so the patched pattern is recomputed
 * exactly and only the step pattern → metric stays linear:
 *   q_t patched:  Σ_h Σ_j (softmax(q'_t·K/√Dh)_j − A_tj) ∂m/∂A_tj
 *   k_s patched:  Σ_h Σ_{t≥s} Σ_j (softmax_j(q_t·K'/√Dh) − A_tj) ∂m/∂A_tj,  K' = K with row s = k'_s.
 * q and k reach the metric only through the pattern, so nothing else is dropped.
 * Under grouped-query attention (H query heads, Hkv key/value heads) query head h reads key head
 * h / (H/Hkv) (transformers' repeat_kv), so a patched key head changes the patterns of all the query
 * heads of its group: its units are the Hkv key heads, a query's units the H query heads. On a
 * sliding-window layer a query at t sees keys j > t − w only, as in the forward's mask.
 */
import type { Tensor } from '../../runtime/tensor';
import type { RowEstimate } from './cells';

interface QkTensors {
  qBase: Tensor; // [B,H,T,Dh]
  kBase: Tensor; // [B,Hkv,T,Dh]
  src: Tensor; // [B,H,T,Dh] or [B,Hkv,T,Dh]: the source run's q (for queries) or k (for keys)
  gradPattern: Tensor; // [B,H,T,T] ∂m/∂pattern on the base run
  /** The layer's sliding window w, if it has one. */
  window?: number;
}

const dotAt = (a: Float32Array, ai: number, b: Float32Array, bi: number, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ai + i] * b[bi + i];
  return s;
};

/** Σ_j (softmax(scores)_j − softmax(base)_j) g_j over the visible keys from ≤ j ≤ t, in float64. */
function patternChange(scores: Float64Array, base: Float64Array, grad: Float32Array, gOff: number, from: number, n: number): number {
  const softmaxDot = (s: Float64Array) => {
    let max = -Infinity;
    for (let j = from; j < n; j++) max = Math.max(max, s[j]);
    let z = 0;
    let num = 0;
    for (let j = from; j < n; j++) {
      const e = Math.exp(s[j] - max);
      z += e;
      num += e * grad[gOff + j];
    }
    return num / z;
  };
  return softmaxDot(scores) - softmaxDot(base);
}

/** The corrected estimate of row b for patching queries (which = 'q') or keys ('k') at every position. */
export function qkRowEstimate(x: QkTensors, which: 'q' | 'k', b: number, length: number): RowEstimate {
  const [, H, T, Dh] = x.qBase.shape;
  const Hkv = x.kBase.shape[1];
  const group = H / Hkv; // query heads per key head
  const units = which === 'q' ? H : Hkv;
  const scale = 1 / Math.sqrt(Dh);
  const firstKey = (t: number) => (x.window === undefined ? 0 : Math.max(0, t - x.window + 1)); // keys before it are masked
  const perPosition = new Float64Array(length); // [T]
  const perUnit = new Float32Array(length * units); // [T,units]
  const base = new Float64Array(T); // one query's base scores [T]
  const patched = new Float64Array(T); // [T]
  const q = x.qBase.data;
  const k = x.kBase.data;
  for (let h = 0; h < H; h++) {
    const qHead = (b * H + h) * T; // row offset of (b, h) in [B,H,T,·]
    const kHead = (b * Hkv + Math.floor(h / group)) * T; // row offset of its key head in [B,Hkv,T,·]
    const scoresOf = (out: Float64Array, t: number) => {
      for (let j = firstKey(t); j <= t; j++) out[j] = dotAt(q, (qHead + t) * Dh, k, (kHead + j) * Dh, Dh) * scale;
    };
    for (let p = 0; p < length; p++) {
      let sum = 0;
      // A patched query changes its own row; a patched key the rows of the queries that see it.
      const queries = which === 'q' ? [p] : Array.from({ length: length - p }, (_, i) => p + i).filter((t) => firstKey(t) <= p);
      for (const t of queries) {
        scoresOf(base, t);
        patched.set(base.subarray(0, t + 1));
        if (which === 'q') for (let j = firstKey(t); j <= t; j++) patched[j] = dotAt(x.src.data, (qHead + t) * Dh, k, (kHead + j) * Dh, Dh) * scale;
        else patched[p] = dotAt(q, (qHead + t) * Dh, x.src.data, (kHead + p) * Dh, Dh) * scale;
        sum += patternChange(patched, base, x.gradPattern.data, (qHead + t) * T, firstKey(t), t + 1);
      }
      perUnit[p * units + (which === 'q' ? h : Math.floor(h / group))] += sum;
      perPosition[p] += sum;
    }
  }
  return { perPosition, perUnit, units };
}
