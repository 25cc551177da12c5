/**
 * Rotary position embedding, rotate-half convention (GPT-NeoX, Llama, Qwen): the first Rd dims of each
 * head are rotated pairwise (j, j + Rd/2) by angle t·θ_j; the rest of the head passes unchanged
 * (partial rotary, NeoX's `rotary_pct`). Scaled variants change only the frequencies (inverseFrequencies).
 *
 * Shape letters: B batch, H heads, T tokens, Dh head dim, Rd rotary dims.
 */
import { FactlensError } from '../errors';
import type { RopeScaling } from '../io/config-types';
import { Graph, Value } from '../graph/ir';

/** What the tables need from a config: rotary dims and θ, and the optional scaling. */
export interface RotaryConfig {
  rotaryDims: number;
  rotaryBase: number;
  maxPositions: number;
  ropeScaling?: RopeScaling;
}

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

/**
 * Inverse frequencies θ_j (j < Rd/2) and the factor cos and sin are multiplied by, as transformers'
 * ROPE_INIT_FUNCTIONS compute them (modeling_rope_utils.py, 5.18), in float64: "default", and the scaled
 * types linear (θ/factor), dynamic (plain within the trained length), llama3 (Llama 3.1: long wavelengths
 * divided by factor, a smooth blend between) and yarn (a ramp between interpolated and extrapolated θ,
 * and an attention factor on cos/sin).
 */
export function inverseFrequencies(rd: number, base: number, s?: RopeScaling): { invFreq: Float64Array; attentionFactor: number } {
  const half = rd / 2;
  const invFreq = new Float64Array(half); // [Rd/2]
  for (let j = 0; j < half; j++) invFreq[j] = 1 / Math.pow(base, (2 * j) / rd);
  if (s === undefined || s.type === 'dynamic') return { invFreq, attentionFactor: 1 };
  if (s.type === 'linear') return { invFreq: invFreq.map((f) => f / s.factor), attentionFactor: 1 };
  if (s.type === 'llama3') {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    return {
      invFreq: invFreq.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f; // short wavelengths: unchanged
        if (wavelen > lowWavelen) return f / s.factor; // long ones: interpolated
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        return ((1 - smooth) * f) / s.factor + smooth * f;
      }),
      attentionFactor: 1,
    };
  }
  // yarn: dims rotating fewer than beta_slow times in the original context are interpolated, more than beta_fast extrapolated.
  const correctionDim = (rotations: number) => (rd * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(s.betaFast);
  let high = correctionDim(s.betaSlow);
  if (s.truncate) [low, high] = [Math.floor(low), Math.ceil(high)];
  [low, high] = [Math.max(low, 0), Math.min(high, rd - 1)];
  if (low === high) high += 0.001; // as transformers: no division by zero
  return {
    invFreq: invFreq.map((f, j) => {
      const extrapolated = 1 - Math.min(1, Math.max(0, (j - low) / (high - low)));
      return (f / s.factor) * (1 - extrapolated) + f * extrapolated;
    }),
    attentionFactor: s.attentionFactor,
  };
}

/** Rotary tables for positions 0..T-1 (as HF computes them, in float64 then rounded). */
export function rotaryTables(cfg: RotaryConfig, T: number): { cos: Float32Array; sin: Float32Array } {
  const rd = cfg.rotaryDims;
  if (cfg.ropeScaling?.type === 'dynamic' && T > cfg.maxPositions) {
    throw new FactlensError(`rope_scaling "dynamic": ${T} tokens exceed max_position_embeddings (${cfg.maxPositions}); dynamic NTK rotary beyond the trained length is not supported`);
  }
  const { invFreq, attentionFactor } = inverseFrequencies(rd, cfg.rotaryBase, cfg.ropeScaling);
  const cos = new Float32Array(T * rd); // [T,Rd]
  const sin = new Float32Array(T * rd); // [T,Rd]
  const half = rd / 2;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < half; j++) {
      const angle = Math.fround(t * Math.fround(invFreq[j]));
      for (const col of [j, j + half]) {
        cos[t * rd + col] = Math.cos(angle) * attentionFactor;
        sin[t * rd + col] = Math.sin(angle) * attentionFactor;
      }
    }
  }
  return { cos, sin };
}
