/**
 * One layer's batched least-squares update (docs/memit.md §2). With the n edit keys as columns of
 * K [dIn,n], their residuals as columns of R [dOut,n] and C = E[k kᵀ] of the layer's input,
 *   MEMIT:  ΔW = R Kᵀ (λC + K Kᵀ)⁻¹            (λ = mom2_update_weight)
 *   EMMET:  ΔW = R (Kᵀ C⁻¹ K + μI)⁻¹ (C⁻¹K)ᵀ  (equality constraint W' K = W K + R; μ = 0 in the paper)
 * MEMIT's form equals R (KᵀC⁻¹K + λI)⁻¹ (C⁻¹K)ᵀ (Woodbury), so both are computed the same way:
 * C⁻¹K from the cached Cholesky factor of C (n solves of O(dIn²), never a new dIn×dIn factor), then
 * an n×n solve. Everything is float64, as MEMIT computes its update in double precision.
 */
import { FactlensError } from '../../errors';
import { Tensor } from '../../runtime/tensor';
import { cholesky, choleskySolve } from '../rome/linalg';
import type { SecondMoment } from '../rome/stats';

export type MassEditAlgorithm = 'memit' | 'emmet';

export interface LayerUpdate {
  /** ΔW [dOut,dIn], row-major, float64. */
  delta: Float64Array;
  dOut: number;
  dIn: number;
  /** The ridge added to KᵀC⁻¹K: λ (MEMIT) or μ (EMMET), plus any jitter the n×n factor needed. */
  ridge: number;
  jitter: number;
}

/**
 * ΔW for keys (one Float32Array of dIn per edit) and residuals (one of dOut per edit).
 * `stats` null means C = I (MEMIT without mom2 adjustment).
 */
export async function leastSquaresUpdate(keys: Float32Array[], residuals: Float64Array[], stats: SecondMoment | null, algorithm: MassEditAlgorithm, ridge: number): Promise<LayerUpdate> {
  const n = keys.length;
  if (!n || residuals.length !== n) throw new FactlensError(`least-squares update: ${n} keys and ${residuals.length} residuals (need the same number, at least one)`);
  if (!(ridge >= 0) || !Number.isFinite(ridge)) throw new FactlensError(`least-squares update: the ${algorithm === 'memit' ? 'mom2 update weight λ' : 'EMMET ridge μ'} must be a finite number ≥ 0, got ${ridge}`);
  const dIn = keys[0].length;
  const dOut = residuals[0].length;
  if (stats && stats.dim !== dIn) throw new FactlensError(`least-squares update: statistics have dimension ${stats.dim}, the keys ${dIn}`);
  const cInvK: Float64Array[] = []; // n × [dIn]
  for (const k of keys) cInvK.push(stats ? await stats.solve(k) : Float64Array.from(k));
  // M = KᵀC⁻¹K + ridge·I  [n,n]
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      const ki = keys[i], aj = cInvK[j];
      for (let c = 0; c < dIn; c++) s += ki[c] * aj[c];
      M[i * n + j] = M[j * n + i] = s + (i === j ? ridge : 0);
    }
  }
  const f = cholesky(M, n);
  // Y = M⁻¹ Rᵀ  [n,dOut], column by column of Rᵀ.
  const Y = new Float64Array(n * dOut);
  const col = new Float64Array(n);
  for (let o = 0; o < dOut; o++) {
    for (let j = 0; j < n; j++) col[j] = residuals[j][o];
    const y = choleskySolve(f, col);
    for (let j = 0; j < n; j++) Y[j * dOut + o] = y[j];
  }
  // ΔW = Yᵀ (C⁻¹K)ᵀ = Σ_j y_j a_jᵀ  [dOut,dIn]
  const delta = new Float64Array(dOut * dIn);
  for (let j = 0; j < n; j++) {
    const a = cInvK[j];
    for (let o = 0; o < dOut; o++) {
      const y = Y[j * dOut + o];
      if (y === 0) continue;
      const off = o * dIn;
      for (let c = 0; c < dIn; c++) delta[off + c] += y * a[c];
    }
  }
  return { delta, dOut, dIn, ridge, jitter: f.jitter };
}

/** W + ΔW on rows [rows[0], rows[1]) of W (a new tensor; W is untouched). */
export function addToRows(W: Tensor, rows: [number, number], u: LayerUpdate): Tensor {
  const inDim = W.shape[1];
  if (u.dIn !== inDim || u.dOut !== rows[1] - rows[0]) throw new FactlensError(`update of shape [${u.dOut},${u.dIn}] does not fit rows ${rows[0]}:${rows[1]} of [${W.shape}]`);
  const out = W.clone();
  const base = rows[0] * inDim;
  for (let i = 0; i < u.delta.length; i++) out.data[base + i] += u.delta[i];
  return out;
}
