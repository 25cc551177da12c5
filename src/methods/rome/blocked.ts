/**
 * Blocked right-looking Cholesky for large second-moment matrices (d in the thousands): for each
 * block column k (width b),
 *   L11 = chol(A11)                  (JavaScript, b³/6)
 *   L21 = A21 · L11⁻ᵀ                (ONNX MatMul [m,b]×[b,b], L11⁻¹ by JS forward substitution)
 *   A22 ← A22 − L21 L21ᵀ             (ONNX MatMul [m,b]×[b,m], lower triangle accumulated in float64)
 * so almost all of the d³/3 flops run in ORT's multi-threaded MatMul. Products are float32 (ROME's
 * own statistics and inverse are float32); the running matrix and the factor are float64.
 */
import { Graph } from '../../graph/ir';
import { Compiled } from '../../graph/session';
import { Tensor } from '../../runtime/tensor';
import { cholesky, Cholesky, meanDiagonal, tryCholesky } from './linalg';

let abT: Promise<Compiled> | null = null;
/** x [m,b] @ yᵀ for y [p,b] → [m,p]. */
function matmulABt(): Promise<Compiled> {
  if (!abT) {
    const g = new Graph('abt');
    const x = g.input('x', ['m', 'b']);
    const y = g.input('y', ['p', 'b']);
    g.output('z', g.matmul(x, g.transpose(y, [1, 0])));
    abT = Compiled.create(g);
  }
  return abT;
}

/** Factor A (row-major n×n) with a ridge only if needed; same contract as cholesky(). */
export async function choleskyBlocked(A: ArrayLike<number>, n: number, block = 256): Promise<Cholesky> {
  const mean = meanDiagonal(A, n);
  for (let k = -1; k <= 10; k++) {
    const jitter = k < 0 ? 0 : mean * 1e-8 * 10 ** k;
    const L = await tryBlocked(A, n, jitter, block);
    if (L) return { n, L, jitter };
  }
  throw new Error('choleskyBlocked: the matrix is not positive definite even with a ridge');
}

async function tryBlocked(A0: ArrayLike<number>, n: number, jitter: number, b: number): Promise<Float64Array | null> {
  const A = Float64Array.from(A0); // working copy; becomes L in its lower triangle
  for (let i = 0; i < n; i++) A[i * n + i] += jitter;
  const mm = await matmulABt();
  for (let k0 = 0; k0 < n; k0 += b) {
    const k1 = Math.min(n, k0 + b);
    const w = k1 - k0;
    const m = n - k1;
    const diag = new Float64Array(w * w);
    for (let i = 0; i < w; i++) for (let j = 0; j <= i; j++) diag[i * w + j] = A[(k0 + i) * n + k0 + j];
    const L11 = tryCholesky(diag, w, 0);
    if (!L11) return null;
    for (let i = 0; i < w; i++) for (let j = 0; j < w; j++) A[(k0 + i) * n + k0 + j] = j <= i ? L11[i * w + j] : 0;
    if (!m) break;
    // L11⁻¹ (lower triangular) by forward substitution, then L21 = A21 · (L11⁻¹)ᵀ.
    const inv = new Float32Array(w * w); // [w,w]
    for (let c = 0; c < w; c++) {
      for (let i = c; i < w; i++) {
        let s = i === c ? 1 : 0;
        for (let k = c; k < i; k++) s -= L11[i * w + k] * inv[k * w + c];
        inv[i * w + c] = s / L11[i * w + i];
      }
    }
    const A21 = new Float32Array(m * w); // [m,w]
    for (let r = 0; r < m; r++) for (let j = 0; j < w; j++) A21[r * w + j] = A[(k1 + r) * n + k0 + j];
    const L21 = (await mm.run({ x: new Tensor(A21, [m, w]), y: new Tensor(inv, [w, w]) })).z; // [m,w]
    for (let r = 0; r < m; r++) for (let j = 0; j < w; j++) A[(k1 + r) * n + k0 + j] = L21.data[r * w + j];
    const S = (await mm.run({ x: L21, y: L21 })).z; // [m,m] = L21 L21ᵀ
    for (let r = 0; r < m; r++) {
      const row = (k1 + r) * n + k1;
      for (let c = 0; c <= r; c++) A[row + c] -= S.data[r * m + c];
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) A[i * n + j] = 0;
  return A;
}

/** Dimensions from which the blocked (ONNX) factorisation is used. */
export const BLOCKED_FROM = 1024;

/** The Cholesky factor of A with a ridge if needed: plain JavaScript for small n, blocked above. */
export async function factorize(A: ArrayLike<number>, n: number): Promise<Cholesky> {
  return n > BLOCKED_FROM ? choleskyBlocked(A, n) : cholesky(A, n);
}
