/**
 * Dense symmetric positive-definite solves in float64 for C x = k (ROME's C⁻¹k̄ without forming
 * C⁻¹): a Cholesky factor C + λI = L Lᵀ, then two triangular solves (O(d²) per solve).
 * The plain factor costs d³/6 multiply-adds in JavaScript (~0.3 GFMA/s here: 0.5 s at d = 1024,
 * 5 s at 2048, ~75 s at 5120, ~10 min at Pythia-2.8b's 10240), so above `BLOCKED_FROM` dimensions
 * a blocked right-looking factor does the O(d³) part, the panel and trailing-matrix products, with
 * ONNX MatMuls (blocked.ts), in float32 products accumulated in float64. The statistics cache stores
 * the factor either way. λ = 0 unless C is numerically singular (fewer samples than dimensions,
 * dead units), then the smallest λ = 10⁻⁸·10ᵏ·mean(diag C) that works.
 */
import { FactlensError } from '../../errors';

export interface Cholesky {
  n: number;
  /** Lower-triangular factor, row-major n×n (upper triangle zero). */
  L: Float64Array;
  /** Ridge added to the diagonal before factoring. */
  jitter: number;
}

/** Factor a symmetric matrix (row-major n×n; float32 or float64), adding a ridge only if needed. */
export function cholesky(A: ArrayLike<number>, n: number): Cholesky {
  if (A.length !== n * n) throw new FactlensError(`cholesky: expected ${n}×${n} values, got ${A.length}`);
  const mean = meanDiagonal(A, n);
  for (let k = -1; k <= 10; k++) {
    const jitter = k < 0 ? 0 : mean * 1e-8 * 10 ** k;
    const L = tryCholesky(A, n, jitter);
    if (L) return { n, L, jitter };
  }
  throw new FactlensError('cholesky: the matrix is not positive definite even with a ridge of 1% of its mean diagonal');
}

/** Mean of the diagonal (the scale of the ridge). */
export function meanDiagonal(A: ArrayLike<number>, n: number): number {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += A[i * n + i];
  return Math.max(mean / n, Number.MIN_VALUE);
}

export function tryCholesky(A: ArrayLike<number>, n: number, jitter: number): Float64Array | null {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = A[ri + j] + (i === j ? jitter : 0);
      for (let k = 0; k < j; k++) s -= L[ri + k] * L[rj + k];
      if (i === j) {
        if (!(s > 0)) return null;
        L[ri + i] = Math.sqrt(s);
      } else {
        L[ri + j] = s / L[rj + j];
      }
    }
  }
  return L;
}

/** x with (L Lᵀ) x = b. */
export function choleskySolve(f: Cholesky, b: ArrayLike<number>): Float64Array {
  const { n, L } = f;
  if (b.length !== n) throw new FactlensError(`choleskySolve: expected a vector of ${n}, got ${b.length}`);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    const ri = i * n;
    for (let k = 0; k < i; k++) s -= L[ri + k] * y[k];
    y[i] = s / L[ri + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
  return x;
}

export const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

export const norm = (a: ArrayLike<number>): number => Math.sqrt(dot(a, a));

/** Split float64 values into float32 high and low parts (hi + lo ≈ x to ~48 bits), for storage. */
export function splitF64(x: Float64Array): { hi: Float32Array; lo: Float32Array } {
  const hi = Float32Array.from(x);
  const lo = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) lo[i] = x[i] - hi[i];
  return { hi, lo };
}

export function joinF64(hi: Float32Array, lo: Float32Array): Float64Array {
  const x = new Float64Array(hi.length);
  for (let i = 0; i < x.length; i++) x[i] = hi[i] + lo[i];
  return x;
}
