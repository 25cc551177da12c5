/**
 * A slow, pure-TypeScript oracle for Mamba's Conv+SSM path at one layer, written straight from the
 * block maths (models/mamba.ts, paper-spec §0.1) in float64, with source tokens' terms left out.
 * It exists to prove path blocking exact (test/information-flow-*.test.ts); it is O(T²·E·N) per target.
 *
 * Shape letters: T tokens, E d_inner, N d_state, R dt_rank, K conv width.
 *
 * For a target t and source set Q, with a_j = W_a n_j (hook mixer.x):
 *   c_j = b_conv + Σ_{k<K} w_k · a_{j−K+1+k}            conv sum, a_{<0} = 0,   j ≤ t
 *           (modes 'exact' and 'exact+slots': terms with j−K+1+k ∈ Q left out)
 *   u_j = SiLU(c_j);  [δ_j; B_j; C_j] = W_x u_j;  Δ_j = softplus(W_dt δ_j + b_dt);  A = −exp(A_log)
 *   s_t = Σ_{j≤t} exp(A ⊙ Σ_{k=j+1..t} Δ_k) ⊙ (Δ_j ⊙ u_j) ⊗ B_j · C_t + D ⊙ u_t    scan sum + D skip
 *           (modes 'exact+slots' and 'retention': terms with j ∈ Q left out of the scan sum)
 */
import type { Model } from '../../runtime/model';
import { FactlensError } from '../../errors';

/** What is removed from the target's Conv+SSM computation (see path-blocking.ts for the definitions). */
export type BlockMode = 'exact' | 'exact+slots' | 'retention';

export interface ConvSsmWeights {
  E: number;
  N: number;
  R: number;
  K: number;
  convW: Float32Array; // [E,1,K]
  convB: Float32Array | null; // [E]
  xProj: Float32Array; // [R+2N,E]
  dtW: Float32Array; // [E,R]
  dtB: Float32Array; // [E]
  A: Float64Array; // [E,N] = −exp(A_log)
  D: Float32Array; // [E]
}

export function convSsmWeights(model: Model, layer: number): ConvSsmWeights {
  const { dInner: E, dState: N, dtRank: R, convKernel: K, useConvBias } = model.mambaConfig;
  const w = (n: string) => model.weight(`layers.${layer}.mixer.${n}`).data;
  const Alog = w('A_log');
  return {
    E, N, R, K,
    convW: w('conv1d.weight'),
    convB: useConvBias ? w('conv1d.bias') : null,
    xProj: w('x_proj.weight'),
    dtW: w('dt_proj.weight'),
    dtB: w('dt_proj.bias'),
    A: Float64Array.from(Alog, (x) => -Math.exp(x)),
    D: w('D'),
  };
}

const silu = (x: number) => x / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/**
 * s_t ([E], float64) for one sequence a ([T,E], row-major) at target position t, with the sources' terms
 * left out as `mode` says. `sources` may contain t itself and positions after t (those are no-ops).
 */
export function referenceSsmOut(w: ConvSsmWeights, a: Float32Array, T: number, t: number, sources: number[], mode: BlockMode = 'exact'): Float64Array {
  const { E, N, R, K } = w;
  if (a.length < T * E) throw new FactlensError(`referenceSsmOut: a has ${a.length} values, expected T·E = ${T * E}`);
  if (t < 0 || t >= T) throw new FactlensError(`referenceSsmOut: target ${t} is out of range 0..${T - 1}`);
  const Q = new Set(sources);
  const dropConv = mode !== 'retention';
  const dropSlot = mode !== 'exact';
  const n = t + 1;
  const u = new Float64Array(n * E); // [t+1,E]
  for (let j = 0; j < n; j++) {
    for (let e = 0; e < E; e++) {
      let c = w.convB ? w.convB[e] : 0;
      for (let k = 0; k < K; k++) {
        const src = j - K + 1 + k;
        if (src < 0 || (dropConv && Q.has(src))) continue; // the a_q term left out of the conv sum
        c += w.convW[e * K + k] * a[src * E + e];
      }
      u[j * E + e] = silu(c);
    }
  }
  const dt = new Float64Array(n * E); // [t+1,E]
  const Bm = new Float64Array(n * N); // [t+1,N]
  const Cm = new Float64Array(n * N); // [t+1,N]
  const delta = new Float64Array(R);
  for (let j = 0; j < n; j++) {
    for (let r = 0; r < R + 2 * N; r++) {
      let acc = 0;
      for (let e = 0; e < E; e++) acc += w.xProj[r * E + e] * u[j * E + e];
      if (r < R) delta[r] = acc;
      else if (r < R + N) Bm[j * N + r - R] = acc;
      else Cm[j * N + r - R - N] = acc;
    }
    for (let e = 0; e < E; e++) {
      let acc = w.dtB[e];
      for (let r = 0; r < R; r++) acc += w.dtW[e * R + r] * delta[r];
      dt[j * E + e] = softplus(acc);
    }
  }
  const s = new Float64Array(E);
  for (let e = 0; e < E; e++) {
    let y = 0;
    let decaySum = 0; // Σ_{k=j+1..t} Δ_k[e], grown as j walks down from t
    for (let j = t; j >= 0; j--) {
      if (!(dropSlot && Q.has(j))) {
        const du = dt[j * E + e] * u[j * E + e];
        for (let nn = 0; nn < N; nn++) y += Math.exp(w.A[e * N + nn] * decaySum) * du * Bm[j * N + nn] * Cm[t * N + nn];
      }
      decaySum += dt[j * E + e];
    }
    s[e] = y + w.D[e] * u[t * E + e];
  }
  return s;
}
