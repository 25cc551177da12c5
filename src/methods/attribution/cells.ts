/**
 * From (a_source − a_base) ⊙ ∂metric/∂a to estimates: summed per (layer, position), and per
 * unit (channel of a [B,T,X] hook, head of a [B,H,T,X] hook, summed over the rest).
 */
import type { Tensor } from '../../runtime/tensor';

export interface RowEstimate {
  /** Σ over the position's features, [T] (the row's real positions). */
  perPosition: Float64Array;
  /** [T,U]: per channel (U = X) or per head (U = H). */
  perUnit: Float32Array;
  units: number;
}

/**
 * Row b of (src − base)·grad over its first `length` positions, for the tensors of one hook,
 * [B,T,X] (heads false) or [B,H,T,X] (heads true).
 */
export function rowEstimate(src: Tensor, base: Tensor, grad: Tensor, b: number, length: number, heads: boolean): RowEstimate {
  const H = heads ? src.shape[1] : 1;
  const T = heads ? src.shape[2] : src.shape[1];
  const X = heads ? src.stride(2) : src.stride(1);
  const units = heads ? H : X;
  const perPosition = new Float64Array(length); // [T]
  const perUnit = new Float32Array(length * units); // [T,U]
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < length; t++) {
      const off = ((b * H + h) * T + t) * X;
      let sum = 0;
      for (let x = 0; x < X; x++) {
        const c = (src.data[off + x] - base.data[off + x]) * grad.data[off + x];
        sum += c;
        if (!heads) perUnit[t * units + x] = c;
      }
      if (heads) perUnit[t * units + h] = sum;
      perPosition[t] += sum;
    }
  }
  return { perPosition, perUnit, units };
}
