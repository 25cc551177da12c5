/**
 * Mamba-1's hidden attention (Ali, Zimerman, Wolf 2024): per channel e the selective scan plus its
 * D skip is exactly a causal token mixing s_t = Σ_{q≤t} α_{t,q} u_q, with
 *   α_{t,q} = Σ_n C_t[n] · exp(A[e,n] · Σ_{r=q+1..t} Δ_r[e]) · Δ_q[e] B_q[n]  (+ D[e] at q = t),
 * u = mixer.ssm_in, Δ = mixer.dt, B = mixer.B, C = mixer.C, A = −exp(A_log) (Π_r exp(Δ_r A) is the
 * exponential of the sum). Computed in float64 over blocks of channels: the live memory is
 * O(block·T² + T·(E + N)); the b·E·N·T² tensor is never formed. Aggregates over channels:
 * 'mean' (signed mean of α), 'abs' (mean |α|), 'contribution' (mean |α_{t,q} u_q|: the size of
 * q's term in s_t, which weights channels by what they actually carry).
 */
import { FactlensError } from '../../errors';
import type { Model, ModelInput } from '../../runtime/model';

export type HiddenAggregate = 'mean' | 'abs' | 'contribution';

export interface ScanInputs {
  T: number;
  E: number;
  N: number;
  /** Groups of channels sharing B and C (default 1): channel e reads group ⌊e·G/E⌋. */
  G?: number;
  dt: Float32Array; // [T,E]
  B: Float32Array; // [T,G·N]
  C: Float32Array; // [T,G·N]
  u: Float32Array; // [T,E] the scan input
  A: Float32Array; // [E,N] = −exp(A_log)
  D: Float32Array; // [E]
}

export interface HiddenAttentionOptions {
  aggregate?: HiddenAggregate; // default 'abs'
  /** Channels whose own α [T,T] to return (default none). */
  channels?: number[];
  /** Channels per block (default 64). */
  block?: number;
  /** Called after each block (for progress; tests read memory here). */
  onBlock?: (done: number, total: number) => void;
}

export interface HiddenAttention {
  /** [t][q]: the channel aggregate; 0 above the diagonal. */
  aggregated: number[][];
  aggregate: HiddenAggregate;
  /** channel → [t][q] α. */
  perChannel: Map<number, number[][]>;
}

const toRows = (m: Float64Array, T: number) => Array.from({ length: T }, (_, t) => Array.from(m.subarray(t * T, (t + 1) * T)));

/** Hidden attention of one sequence's scan inputs. */
export function hiddenAttentionOf(x: ScanInputs, opts: HiddenAttentionOptions = {}): HiddenAttention {
  const { T, E, N } = x;
  const G = x.G ?? 1;
  if (!(Number.isInteger(G) && G >= 1 && E % G === 0)) throw new FactlensError(`hiddenAttention: groups G = ${G} must divide the ${E} channels`);
  const aggregate = opts.aggregate ?? 'abs';
  if (!['mean', 'abs', 'contribution'].includes(aggregate)) throw new FactlensError(`hiddenAttention: aggregate must be mean, abs or contribution, got "${aggregate}"`);
  const block = opts.block ?? 64;
  if (!(Number.isInteger(block) && block >= 1)) throw new FactlensError(`hiddenAttention: block must be a positive integer, got ${block}`);
  const wanted = new Set(opts.channels ?? []);
  for (const e of wanted) if (!(Number.isInteger(e) && e >= 0 && e < E)) throw new FactlensError(`hiddenAttention: channel ${e} is out of range 0..${E - 1}`);
  const agg = new Float64Array(T * T); // [T,T]
  const perChannel = new Map<number, number[][]>();
  const alpha = new Float64Array(block * T * T); // [block,T,T] one block of channels
  const cum = new Float64Array(T); // Σ_{r≤t} Δ_r[e]
  for (let e0 = 0; e0 < E; e0 += block) {
    const n = Math.min(block, E - e0);
    alpha.fill(0);
    for (let i = 0; i < n; i++) {
      const e = e0 + i;
      const bc = Math.floor((e * G) / E) * N; // offset of this channel's group in a [G·N] row of B and C
      let c = 0;
      for (let t = 0; t < T; t++) cum[t] = c += x.dt[t * E + e];
      const a = alpha.subarray(i * T * T, (i + 1) * T * T); // [T,T]
      for (let q = 0; q < T; q++) {
        const dq = x.dt[q * E + e];
        for (let t = q; t < T; t++) {
          const decay = cum[t] - cum[q];
          let s = 0;
          for (let k = 0; k < N; k++) s += x.C[t * G * N + bc + k] * Math.exp(x.A[e * N + k] * decay) * dq * x.B[q * G * N + bc + k];
          a[t * T + q] = s + (t === q ? x.D[e] : 0);
        }
      }
      for (let t = 0; t < T; t++) for (let q = 0; q <= t; q++) {
        const v = a[t * T + q];
        agg[t * T + q] += (aggregate === 'mean' ? v : aggregate === 'abs' ? Math.abs(v) : Math.abs(v * x.u[q * E + e])) / E;
      }
      if (wanted.has(e)) perChannel.set(e, toRows(a, T));
    }
    opts.onBlock?.(e0 + n, E);
  }
  return { aggregated: toRows(agg, T), aggregate, perChannel };
}

/** The scan inputs of one prompt at a layer, from a run of the model (Mamba-1 or Mamba-2). */
export async function scanInputs(model: Model, input: ModelInput, layer: number): Promise<ScanInputs> {
  const c = model.config;
  if (c.arch !== 'mamba' && c.arch !== 'mamba2') throw new FactlensError(`hiddenAttention: the model is ${model.arch}; hidden attention is defined for Mamba models`);
  if (!(Number.isInteger(layer) && layer >= 0 && layer < model.nLayers)) throw new FactlensError(`hiddenAttention: layer ${layer} is out of range 0..${model.nLayers - 1}`);
  const batch = model.batch(input);
  if (batch.B !== 1) throw new FactlensError('hiddenAttention: give a single prompt');
  const p = `layers.${layer}.mixer.`;
  const res = await model.run(batch, { cache: [`${p}dt`, `${p}B`, `${p}C`, `${p}ssm_in`], untilLayer: layer + 1, logits: 'none' });
  const [dt, B, C, u] = ['dt', 'B', 'C', 'ssm_in'].map((n) => res.cache.get(`${p}${n}`).data); // [T,E or H], [T,G·N] ×2, [T,E]
  const { dInner: E, dState: N } = c;
  const negA = model.weight(`${p}A_log`).data.map((v) => -Math.exp(v)); // Mamba-1 [E,N]; Mamba-2 [H]
  const D = model.weight(`${p}D`).data; // Mamba-1 [E]; Mamba-2 [H]
  if (c.arch === 'mamba') return { T: batch.T, E, N, A: negA, D, dt, B, C, u };
  // Mamba-2: spread each head's Δ, A and D over its P channels.
  const { nHeads: H, headDim: P, nGroups: G } = c;
  const T = batch.T;
  const dtE = new Float32Array(T * E); // [T,E]
  for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) dtE[t * E + e] = dt[t * H + Math.floor(e / P)];
  const A = new Float32Array(E * N); // [E,N]
  for (let e = 0; e < E; e++) A.fill(negA[Math.floor(e / P)], e * N, (e + 1) * N);
  const DE = Float32Array.from({ length: E }, (_, e) => D[Math.floor(e / P)]); // [E]
  return { T, E, N, G, A, D: DE, dt: dtE, B, C, u };
}

/** Hidden attention of a prompt at a Mamba layer (heatmaps like attention patterns). */
export async function hiddenAttention(model: Model, input: ModelInput, layer: number, opts: HiddenAttentionOptions = {}): Promise<HiddenAttention> {
  return hiddenAttentionOf(await scanInputs(model, input, layer), opts);
}
