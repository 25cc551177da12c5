/**
 * Rotary position embedding, rotate-half convention (GPT-NeoX, Llama, Qwen): the first Rd dims of each
 * head are rotated pairwise (j, j + Rd/2) by angle t·θ_j; the rest of the head passes unchanged
 * (partial rotary, NeoX's `rotary_pct`).
 *
 * Shape letters: B batch, H heads, T tokens, Dh head dim, Rd rotary dims.
 */
import { Graph, Value } from '../graph/ir';

/** rotate_half as a matrix: x @ R = [−x₂, x₁] for x = [x₁, x₂] split in halves. */
function rotateHalfMatrix(rd: number): Float32Array {
  const R = new Float32Array(rd * rd); // [Rd,Rd]
  const half = rd / 2;
  for (let j = 0; j < half; j++) {
    R[(j + half) * rd + j] = -1; // out[j] = −x[j+half]
    R[j * rd + (j + half)] = 1; // out[j+half] = x[j]
  }
  return R;
}

/** x·cos + rotate_half(x)·sin on the first Rd dims of x [B,H,T,Dh]; cos, sin are [T,Rd]. */
export function applyRotary(g: Graph, x: Value, cos: Value, sin: Value, rd: number, dh: number): Value {
  if (rd === 0) return x;
  const rot = g.slice(x, 3, 0, rd); // [B,H,T,Rd]
  const R = g.constant(rotateHalfMatrix(rd), [rd, rd]);
  const rotated = g.add(g.mul(rot, cos), g.mul(g.matmul(rot, R), sin)); // [B,H,T,Rd]
  return rd === dh ? rotated : g.concat([rotated, g.slice(x, 3, rd, dh)], 3); // [B,H,T,Dh]
}

/** Rotary tables for positions 0..T-1 (as HF computes them, in float64 then rounded). */
export function rotaryTables(cfg: { rotaryDims: number; rotaryBase: number }, T: number): { cos: Float32Array; sin: Float32Array } {
  const rd = cfg.rotaryDims;
  const cos = new Float32Array(T * rd); // [T,Rd]
  const sin = new Float32Array(T * rd); // [T,Rd]
  const half = rd / 2;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < half; j++) {
      const invFreq = Math.fround(1 / Math.pow(cfg.rotaryBase, (2 * j) / rd));
      const angle = Math.fround(t * invFreq);
      for (const col of [j, j + half]) {
        cos[t * rd + col] = Math.cos(angle);
        sin[t * rd + col] = Math.sin(angle);
      }
    }
  }
  return { cos, sin };
}
