/**
 * The per-layer least-squares update against its definitions, on random keys and a random SPD C:
 * MEMIT's ΔW satisfies the normal equations ΔW (λC + K Kᵀ) = R Kᵀ; EMMET's satisfies its equality
 * constraint ΔW K = R and lies in the span of (C⁻¹K)ᵀ (the minimum-‖ΔW C^{1/2}‖ solution); with
 * C = I and one key, MEMIT is r kᵀ / (λ + ‖k‖²). And W + ΔW lands on the right rows.
 */
import { describe, expect, it } from 'vitest';
import { rng } from '../../src/runtime/generate';
import { Tensor } from '../../src/runtime/tensor';
import { cholesky, choleskySolve } from '../../src/methods/rome/linalg';
import { SecondMoment } from '../../src/methods/rome/stats';
import type { StatsKey } from '../../src/methods/rome/stats-cache';
import { addToRows, leastSquaresUpdate } from '../../src/methods/memit/update';

const dIn = 12, dOut = 7, n = 5;
const rand = rng(7);
const gauss = () => { let s = 0; for (let i = 0; i < 12; i++) s += rand(); return s - 6; };
const vec = (d: number, scale = 1) => Float32Array.from({ length: d }, () => scale * gauss());

/** A random SPD C = A Aᵀ / m + 0.1 I, wrapped as statistics. */
function randomStats(): { C: Float64Array; stats: SecondMoment } {
  const m = 40;
  const A = Array.from({ length: m }, () => vec(dIn));
  const C = new Float64Array(dIn * dIn);
  for (let i = 0; i < dIn; i++) for (let j = 0; j < dIn; j++) {
    let s = i === j ? 0.1 : 0;
    for (const a of A) s += (a[i] * a[j]) / m;
    C[i * dIn + j] = s;
  }
  const key = { keyHook: 'layers.0.mlp.key' } as StatsKey;
  return { C, stats: new SecondMoment(key, dIn, Float32Array.from(C), m, null, cholesky(C, dIn)) };
}

/** [rows,cols] row-major product of A [rows,inner] and B [inner,cols]. */
function matmul(A: ArrayLike<number>, B: ArrayLike<number>, rows: number, inner: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let k = 0; k < inner; k++) for (let c = 0; c < cols; c++) out[r * cols + c] += A[r * inner + k] * B[k * cols + c];
  return out;
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num = Math.max(num, Math.abs(a[i] - b[i])); den = Math.max(den, Math.abs(b[i])); }
  return num / den;
};

describe('least-squares update of one layer', () => {
  const keys = Array.from({ length: n }, () => vec(dIn));
  const residuals = Array.from({ length: n }, () => Float64Array.from(vec(dOut)));
  const K = new Float64Array(dIn * n); // [dIn,n]
  keys.forEach((k, j) => k.forEach((x, i) => (K[i * n + j] = x)));
  const R = new Float64Array(dOut * n); // [dOut,n]
  residuals.forEach((r, j) => r.forEach((x, o) => (R[o * n + j] = x)));
  const Kt = new Float64Array(n * dIn); // [n,dIn]
  keys.forEach((k, j) => k.forEach((x, i) => (Kt[j * dIn + i] = x)));

  it('MEMIT satisfies ΔW (λC + K Kᵀ) = R Kᵀ', async () => {
    const { C, stats } = randomStats();
    const lambda = 3.5;
    const u = await leastSquaresUpdate(keys, residuals, stats, 'memit', lambda);
    const M = matmul(K, Kt, dIn, n, dIn); // [dIn,dIn]
    for (let i = 0; i < M.length; i++) M[i] += lambda * C[i];
    expect(relErr(matmul(u.delta, M, dOut, dIn, dIn), matmul(R, Kt, dOut, n, dIn))).toBeLessThan(1e-9);
    expect(u.jitter).toBe(0);
  });

  it('EMMET meets ΔW K = R exactly and lies in the span of (C⁻¹K)ᵀ', async () => {
    const { C, stats } = randomStats();
    const u = await leastSquaresUpdate(keys, residuals, stats, 'emmet', 0);
    expect(relErr(matmul(u.delta, K, dOut, dIn, n), R)).toBeLessThan(1e-9);
    // ΔW C K⊥ = 0 for every K⊥ orthogonal to the keys: ΔW C = Λ Kᵀ, i.e. (ΔW C) projected off span(K) is 0.
    const DC = matmul(u.delta, C, dOut, dIn, dIn); // [dOut,dIn]
    const G = matmul(Kt, K, n, dIn, n);
    const coef = matmul(DC, K, dOut, dIn, n); // (ΔW C) K  [dOut,n]
    const Ginv = cholesky(G, n);
    const proj = new Float64Array(dOut * dIn);
    for (let o = 0; o < dOut; o++) {
      // least-squares coefficients a with (ΔW C)ᵀ ≈ K a: G a = Kᵀ (ΔW C)ᵀ
      const a = choleskySolve(Ginv, coef.subarray(o * n, (o + 1) * n));
      for (let i = 0; i < dIn; i++) for (let j = 0; j < n; j++) proj[o * dIn + i] += K[i * n + j] * a[j];
    }
    expect(relErr(proj, DC)).toBeLessThan(1e-9);
  });

  it('with C = I and one key MEMIT is r kᵀ / (λ + ‖k‖²), and W + ΔW touches only the given rows', async () => {
    const k = keys[0], r = residuals[0];
    const lambda = 2;
    const u = await leastSquaresUpdate([k], [r], null, 'memit', lambda);
    const kk = k.reduce((s, x) => s + x * x, 0);
    const expected = new Float64Array(dOut * dIn);
    for (let o = 0; o < dOut; o++) for (let i = 0; i < dIn; i++) expected[o * dIn + i] = (r[o] * k[i]) / (lambda + kk);
    expect(relErr(u.delta, expected)).toBeLessThan(1e-12);
    const W = new Tensor(vec(3 * dOut * dIn), [3 * dOut, dIn]);
    const W2 = addToRows(W, [dOut, 2 * dOut], u);
    for (let row = 0; row < 3 * dOut; row++) for (let c = 0; c < dIn; c++) {
      const d = W2.data[row * dIn + c] - W.data[row * dIn + c];
      const want = row >= dOut && row < 2 * dOut ? u.delta[(row - dOut) * dIn + c] : 0;
      expect(Math.abs(d - want)).toBeLessThan(1e-6);
    }
    expect(() => addToRows(W, [0, dOut + 1], u)).toThrow(/does not fit rows 0:8/);
  });

  it('refuses mismatched inputs and bad ridges', async () => {
    await expect(leastSquaresUpdate([], [], null, 'memit', 1)).rejects.toThrow(/0 keys and 0 residuals/);
    await expect(leastSquaresUpdate(keys, residuals.slice(1), null, 'memit', 1)).rejects.toThrow(/5 keys and 4 residuals/);
    await expect(leastSquaresUpdate(keys, residuals, null, 'emmet', NaN)).rejects.toThrow(/EMMET ridge μ must be a finite number ≥ 0/);
    const { stats } = randomStats();
    await expect(leastSquaresUpdate([vec(dIn + 1)], [residuals[0]], stats, 'memit', 1)).rejects.toThrow(/statistics have dimension 12, the keys 13/);
  });
});
