/**
 * AtP*'s correction for queries and keys (Kramár et al. 2024, §3.1.1): the linear estimate through
 * the attention softmax fails when a patch saturates it, so the patched pattern is recomputed
 * exactly and only the step pattern → metric stays linear:
 *   q_t patched:  Σ_h Σ_j (softmax(q'_t·K/√Dh)_j − A_tj) ∂m/∂A_tj
 *   k_s patched:  Σ_h Σ_{t≥s} Σ_j (softmax_j(q_t·K'/√Dh) − A_tj) ∂m/∂A_tj,  K' = K with row s = k'_s.
 * q and k reach the metric only through the pattern, so nothing else is dropped.
 */
import type { Tensor } from '../../runtime/tensor';
import type { RowEstimate } from './cells';

interface QkTensors {
  qBase: Tensor; // [B,H,T,Dh]
  kBase: Tensor; // [B,H,T,Dh]
  src: Tensor; // [B,H,T,Dh]: the source run's q (for queries) or k (for keys)
  gradPattern: Tensor; // [B,H,T,T] ∂m/∂pattern on the base run
}

const dotAt = (a: Float32Array, ai: number, b: Float32Array, bi: number, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ai + i] * b[bi + i];
  return s;
};

/** Σ_j (softmax(scores)_j − softmax(base)_j) g_j over j ≤ t, in float64. */
function patternChange(scores: Float64Array, base: Float64Array, grad: Float32Array, gOff: number, n: number): number {
  const softmaxDot = (s: Float64Array) => {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, s[j]);
    let z = 0;
    let num = 0;
    for (let j = 0; j < n; j++) {
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
  const scale = 1 / Math.sqrt(Dh);
  const perPosition = new Float64Array(length); // [T]
  const perUnit = new Float32Array(length * H); // [T,H]
  const base = new Float64Array(T); // one query's base scores [T]
  const patched = new Float64Array(T); // [T]
  const q = x.qBase.data;
  const k = x.kBase.data;
  for (let h = 0; h < H; h++) {
    const head = (b * H + h) * T; // row offset of (b, h) in [B,H,T,·]
    const scoresOf = (out: Float64Array, t: number) => {
      for (let j = 0; j <= t; j++) out[j] = dotAt(q, (head + t) * Dh, k, (head + j) * Dh, Dh) * scale;
    };
    for (let p = 0; p < length; p++) {
      let sum = 0;
      const queries = which === 'q' ? [p] : Array.from({ length: length - p }, (_, i) => p + i);
      for (const t of queries) {
        scoresOf(base, t);
        patched.set(base.subarray(0, t + 1));
        if (which === 'q') for (let j = 0; j <= t; j++) patched[j] = dotAt(x.src.data, (head + t) * Dh, k, (head + j) * Dh, Dh) * scale;
        else patched[p] = dotAt(q, (head + t) * Dh, x.src.data, (head + p) * Dh, Dh) * scale;
        sum += patternChange(patched, base, x.gradPattern.data, (head + t) * T, t + 1);
      }
      perUnit[p * H + h] = sum;
      perPosition[p] += sum;
    }
  }
  return { perPosition, perUnit, units: H };
}
