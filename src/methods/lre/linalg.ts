/**
 * The small dense linear algebra LREs need, in float64 on plain typed arrays:
 * matrix–vector products, and the SVD of a D×D Jacobian for low-rank
 * approximations and rank-r pseudo-inverses.
 *
 * SVD: one-sided Jacobi (Hestenes). Columns of A are orthogonalised by plane
 * rotations until every pair is orthogonal to machine precision; the column
 * norms are then the singular values. It is simple, has no special cases and
 * computes small singular values to high relative accuracy. Cost: about 5·n³
 * flops per sweep and 6–10 sweeps, i.e. ≈ 0.5–1 s for n = 256 in JavaScript.
 * For a 2.8b model (n = 2560) that is 1000× more (tens of minutes per
 * Jacobian); there one wants a truncated SVD (subspace iteration to the
 * largest rank searched, ≤ 512) or LAPACK through WebAssembly.
 */
import { FactlensError } from '../../errors';

/** A dense row-major matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array; // [rows,cols]
}

export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  if (data && data.length !== rows * cols) throw new FactlensError(`matrix: ${rows}×${cols} needs ${rows * cols} values, got ${data.length}`);
  return { rows, cols, data: data ? Float64Array.from(data) : new Float64Array(rows * cols) };
}

export function identity(n: number): Matrix {
  const m = matrix(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/** y = A x. */
export function matVec(a: Matrix, x: ArrayLike<number>): Float64Array {
  if (x.length !== a.cols) throw new FactlensError(`matVec: A is ${a.rows}×${a.cols}, x has ${x.length} entries`);
  const y = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) {
    let s = 0;
    const off = i * a.cols;
    for (let j = 0; j < a.cols; j++) s += a.data[off + j] * x[j];
    y[i] = s;
  }
  return y;
}

/** C = A B. */
export function matMul(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw new FactlensError(`matMul: ${a.rows}×${a.cols} times ${b.rows}×${b.cols}`);
  const c = matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const v = a.data[i * a.cols + k];
      if (v === 0) continue;
      const bo = k * b.cols;
      const co = i * b.cols;
      for (let j = 0; j < b.cols; j++) c.data[co + j] += v * b.data[bo + j];
    }
  }
  return c;
}

export function transpose(a: Matrix): Matrix {
  const t = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) t.data[j * a.rows + i] = a.data[i * a.cols + j];
  return t;
}

/** max |A − B| over entries. */
export function maxAbsDiff(a: Matrix, b: Matrix): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

/** A = U diag(S) Vᵀ with singular values in decreasing order; U, V have orthonormal columns. */
export interface Svd {
  U: Matrix; // [m,n]
  S: Float64Array; // [n]
  V: Matrix; // [n,n]
}

/** Thin SVD of an m×n matrix (m ≥ n) by one-sided Jacobi rotations. */
export function svd(a: Matrix, opts: { tol?: number; maxSweeps?: number } = {}): Svd {
  const { rows: m, cols: n } = a;
  if (m < n) throw new FactlensError(`svd: expects rows ≥ cols, got ${m}×${n} (take the SVD of the transpose)`);
  const tol = opts.tol ?? 1e-13;
  const maxSweeps = opts.maxSweeps ?? 60;
  // Work on columns as contiguous rows: W[j] = column j of A, Vt[j] = column j of V.
  const W = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) W[j * m + i] = a.data[i * n + j];
  const Vt = new Float64Array(n * n);
  for (let j = 0; j < n; j++) Vt[j * n + j] = 1;
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) norms[j] = dot(W, j * m, W, j * m, m);

  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const alpha = norms[p];
        const beta = norms[q];
        if (alpha === 0 || beta === 0) continue;
        const gamma = dot(W, p * m, W, q * m, m);
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotate(W, p * m, q * m, m, c, s);
        rotate(Vt, p * n, q * n, n, c, s);
        norms[p] = alpha - t * gamma;
        norms[q] = beta + t * gamma;
      }
    }
    // Refresh the running norms (they drift by rounding).
    for (let j = 0; j < n; j++) norms[j] = dot(W, j * m, W, j * m, m);
    if (!rotated) break;
  }

  const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const U = matrix(m, n);
  const V = matrix(n, n);
  const S = new Float64Array(n);
  order.forEach((j, k) => {
    const sigma = Math.sqrt(norms[j]);
    S[k] = sigma;
    for (let i = 0; i < m; i++) U.data[i * n + k] = sigma > 0 ? W[j * m + i] / sigma : 0;
    for (let i = 0; i < n; i++) V.data[i * n + k] = Vt[j * n + i];
  });
  return { U, S, V };
}

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i++) s += a[ao + i] * b[bo + i];
  return s;
}

/** (x, y) ← (c·x − s·y, s·x + c·y) on two rows of one array. */
function rotate(a: Float64Array, xo: number, yo: number, len: number, c: number, s: number): void {
  for (let i = 0; i < len; i++) {
    const x = a[xo + i];
    const y = a[yo + i];
    a[xo + i] = c * x - s * y;
    a[yo + i] = s * x + c * y;
  }
}

/** Number of singular values above `rtol`·σ_max (numerical rank). */
export function numericalRank(s: Float64Array, rtol = 1e-6): number {
  const cut = (s[0] ?? 0) * rtol;
  let r = 0;
  while (r < s.length && s[r] > cut && s[r] > 0) r++;
  return r;
}

function checkRank(svdA: Svd, rank: number, what: string): number {
  if (!Number.isInteger(rank) || rank < 0) throw new FactlensError(`${what}: rank must be a non-negative integer, got ${rank}`);
  return Math.min(rank, svdA.S.length);
}

/** The best rank-r approximation U_r Σ_r V_rᵀ. */
export function lowRankApprox(svdA: Svd, rank: number): Matrix {
  const r = checkRank(svdA, rank, 'lowRankApprox');
  const { U, S, V } = svdA;
  const out = matrix(U.rows, V.rows);
  for (let k = 0; k < r; k++) {
    for (let i = 0; i < U.rows; i++) {
      const uik = U.data[i * U.cols + k] * S[k];
      if (uik === 0) continue;
      const oo = i * V.rows;
      for (let j = 0; j < V.rows; j++) out.data[oo + j] += uik * V.data[j * V.cols + k];
    }
  }
  return out;
}

/**
 * The rank-r pseudo-inverse V_r Σ_r⁻¹ U_rᵀ. Singular values that are exactly
 * zero (or below `rtol`·σ_max) are skipped rather than inverted.
 */
export function lowRankPinv(svdA: Svd, rank: number, rtol = 0): Matrix {
  const r = checkRank(svdA, rank, 'lowRankPinv');
  const { U, S, V } = svdA;
  const out = matrix(V.rows, U.rows);
  for (let k = 0; k < r; k++) {
    if (!(S[k] > rtol * S[0]) || S[k] === 0) continue;
    for (let i = 0; i < V.rows; i++) {
      const vik = V.data[i * V.cols + k] / S[k];
      if (vik === 0) continue;
      const oo = i * U.rows;
      for (let j = 0; j < U.rows; j++) out.data[oo + j] += vik * U.data[j * U.cols + k];
    }
  }
  return out;
}

/**
 * J_r⁺ d for several ranks at once without forming the matrices: the
 * coefficients (u_kᵀ d)/σ_k are computed once and accumulated along v_k.
 * Returns one vector per rank (in the order given).
 */
export function pinvApplyRanks(svdA: Svd, d: ArrayLike<number>, ranks: number[], rtol = 0): Float64Array[] {
  const { U, S, V } = svdA;
  if (d.length !== U.rows) throw new FactlensError(`pinvApplyRanks: vector has ${d.length} entries, J has ${U.rows} rows`);
  const n = S.length;
  const coef = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    if (!(S[k] > rtol * S[0]) || S[k] === 0) continue;
    let s = 0;
    for (let i = 0; i < U.rows; i++) s += U.data[i * U.cols + k] * d[i];
    coef[k] = s / S[k];
  }
  const sorted = [...new Set(ranks.map((r) => checkRank(svdA, r, 'pinvApplyRanks')))].sort((a, b) => a - b);
  const acc = new Float64Array(V.rows);
  const byRank = new Map<number, Float64Array>();
  let k = 0;
  for (const r of sorted) {
    for (; k < r; k++) {
      if (coef[k] === 0) continue;
      for (let i = 0; i < V.rows; i++) acc[i] += V.data[i * V.cols + k] * coef[k];
    }
    byRank.set(r, acc.slice());
  }
  return ranks.map((r) => byRank.get(Math.min(r, n))!);
}
