/**
 * Mamba-2 (Dao & Gu 2024, SSD) as stages between hook points, written to match Hugging Face
 * Mamba2ForCausalLM's torch path (Mamba2Mixer.torch_forward, transformers 5.18).
 *
 * Shape letters: B batch, T tokens, D d_model, E d_inner = H·P, H heads, P head dim (Dh in MAMBA2_HOOKS, whose P
 * is the read-out positions), G groups,
 * N d_state, K conv width, V vocab.
 *
 * A block: n = RMSNorm(h); [z; x; B; C; δ] = W_in n; [x; B; C] = SiLU(causal depthwise conv([x; B; C]));
 * Δ = clamp(softplus(δ + dt_bias), dt limits) per head; per head h with group g(h) = h / (H/G):
 * S_t = exp(Δ_t A_h) S_{t-1} + Δ_t x_t ⊗ B_{t,g}; s_t = S_t C_{t,g} + D_h x_t;
 * y = RMSNorm(s ⊙ SiLU(z)) ⊙ w (over all E channels, as transformers' MambaRMSNormGated does);
 * o = W_out y; h' = h + o.
 *
 * The SSD recurrence is Mamba-1's selective scan with tied parameters: per group, the channels of its
 * heads see one B_t and C_t, Δ repeated over each head's P channels and A_h over its P×N entries. So
 * each group runs the existing scan op (ONNX Scan with its reverse-mode rule, or the native addon):
 * a recurrence, exact for any chunk_size (transformers' chunked SSD computes the same sums).
 */
import type { Mamba2Config } from '../io/config';
import { Graph, Value } from '../graph/ir';
import { selectiveScan, ScanResult } from '../graph/selective-scan';
import { nativeScanOp } from '../graph/native-scan';
import { StageDef, StageIO } from '../runtime/stage';
import { rmsNorm } from './norms';
import { causalConv } from './causal-conv';
import { declaredHook, HookPoints } from './hook-points';

/** Mamba-2's hook points, declared once here where the graph below creates them. */
export const MAMBA2_HOOKS = {
  embed: { scope: 'model', shape: '[B,T,D]', meaning: 'token embeddings (residual stream entering layer 0)', aliases: ['hook_embed', 'embeddings'] },
  resid_pre: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream entering the block, h^{l-1}', aliases: ['hook_resid_pre', 'hook_in'] },
  norm: { scope: 'layer', shape: '[B,T,D]', meaning: 'RMSNorm output: the key of W_in (in_proj input)', aliases: ['hook_normalized_input', 'hook_mixer_in'] },
  'mixer.z': { scope: 'layer', shape: '[B,T,E]', meaning: 'z, the gate part of in_proj', aliases: ['hook_z_in_proj', 'z_in_proj', 'z'] },
  'mixer.x': { scope: 'layer', shape: '[B,T,E]', meaning: 'x part of in_proj (conv input)', aliases: ['hook_x_in_proj', 'x_in_proj'] },
  'mixer.B_in': { scope: 'layer', shape: '[B,T,G·N]', meaning: 'B part of in_proj (conv input), groups major', aliases: ['B_in'] },
  'mixer.C_in': { scope: 'layer', shape: '[B,T,G·N]', meaning: 'C part of in_proj (conv input), groups major', aliases: ['C_in'] },
  'mixer.dt_in': { scope: 'layer', shape: '[B,T,H]', meaning: 'δ, the dt part of in_proj (before dt_bias and softplus)', aliases: ['dt_in'] },
  'mixer.conv_in': { scope: 'layer', shape: '[B,T,E+2G·N]', meaning: '[x; B; C] from in_proj, the conv input (its last K−1 rows are the conv state)', aliases: ['xBC', 'conv_in'] },
  'mixer.conv': { scope: 'layer', shape: '[B,T,E+2G·N]', meaning: 'causal depthwise conv1d output over [x; B; C], before SiLU', aliases: ['hook_conv', 'conv', 'conv_out'] },
  'mixer.ssm_in': { scope: 'layer', shape: '[B,T,E]', meaning: 'x = SiLU(conv) x part, the SSD input', aliases: ['hook_ssm_input', 'ssm_in'] },
  'mixer.B': { scope: 'layer', shape: '[B,T,G·N]', meaning: 'B_t per group (SiLU(conv) B part)', aliases: ['hook_B', 'B'] },
  'mixer.C': { scope: 'layer', shape: '[B,T,G·N]', meaning: 'C_t per group (SiLU(conv) C part)', aliases: ['hook_C', 'C'] },
  'mixer.dt': { scope: 'layer', shape: '[B,T,H]', meaning: 'Δ = clamp(softplus(δ + dt_bias)) per head', aliases: ['hook_delta', 'dt'] },
  'mixer.state': { scope: 'layer', shape: '[B,T,H,Dh,N]', meaning: 'per-head SSD state S_t after each token (read-only; patch with statePatches)', aliases: ['state'] },
  'mixer.ssm_out': { scope: 'layer', shape: '[B,T,E]', meaning: 's = SSD output incl. the D skip, before the gated norm', aliases: ['hook_ssm_output', 'ssm_out'] },
  'mixer.gate': { scope: 'layer', shape: '[B,T,E]', meaning: 'g = SiLU(z), the gate of the gated norm', aliases: ['gate'] },
  'mixer.out_proj_in': { scope: 'layer', shape: '[B,T,E]', meaning: 'gated-norm output RMSNorm(s ⊙ g) ⊙ w: the key of W_out (out_proj input)', aliases: ['hook_norm_out', 'norm_out', 'out_proj_in'] },
  'mixer.out': { scope: 'layer', shape: '[B,T,D]', meaning: 'o = W_out y, the block output before the residual add', aliases: ['hook_out_proj', 'hook_mixer_out', 'mixer_out', 'mixer'] },
  resid_post: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream after the block, h^l', aliases: ['hook_resid_post', 'hook_out', ''] },
  norm_f: { scope: 'model', shape: '[B,P,D]', meaning: 'final RMSNorm output at the read-out positions', aliases: ['ln_final.hook_normalized', 'hook_norm'] },
  logits: { scope: 'model', shape: '[B,P,V]', meaning: 'next-token logits at the read-out positions', aliases: ['hook_logits'] },
} as const satisfies HookPoints;

/** Sizes of the shape letters MAMBA2_HOOKS uses beyond B, T, P, D, V (Dh: head dim; E = H·Dh). */
export function mamba2ShapeLetters(c: Mamba2Config): Record<string, number> {
  const GN = c.nGroups * c.dState;
  return { E: c.dInner, H: c.nHeads, Dh: c.headDim, N: c.dState, 'G·N': GN, 'E+2G·N': c.dInner + 2 * GN };
}

/** [..., H] per head → [..., H·P] per channel (each head's value on its P channels). */
function perChannel(g: Graph, v: Value, H: number, P: number): Value {
  const ones = g.constant(new Float32Array(P).fill(1), [P]); // [P]
  const rank = v.shape.length;
  const spread = g.mul(g.unsqueeze(v, [rank]), ones); // [...,H,P]
  return g.reshape(spread, [...new Array(rank - 1).fill(0), H * P]); // [...,E]
}

/** The SSD recurrence as one selective scan per group of heads; states concatenated back to [B,T,E,N]. */
function ssdScan(g: Graph, io: StageIO, cfg: Mamba2Config, native: boolean, dt: Value, A: Value, x: Value, Bm: Value, Cm: Value, h0: Value): ScanResult {
  const { dInner: E, nGroups: G, dState: N } = cfg;
  const Eg = E / G; // channels per group
  const withStates = !!io.options.states;
  const parts: ScanResult[] = [];
  for (let k = 0; k < G; k++) {
    const ch = (v: Value, axis: number) => g.slice(v, axis, k * Eg, (k + 1) * Eg); // this group's channels
    const grp = (v: Value) => g.slice(v, 2, k * N, (k + 1) * N); // [B,T,N]: this group's B or C
    const args = { dt: ch(dt, 2), A: ch(A, 0), u: ch(x, 2), B: grp(Bm), C: grp(Cm), h0: ch(h0, 1) };
    parts.push(native ? (io.host({ ...nativeScanOp(Eg, N, withStates), name: `scan${k}` }, args) as unknown as ScanResult) : selectiveScan(g, args.dt, args.A, args.u, args.B, args.C, args.h0, withStates));
  }
  const cat = (key: keyof ScanResult, axis: number) => (G === 1 ? parts[0][key]! : g.concat(parts.map((p) => p[key]!), axis));
  return { y: cat('y', 2), last: cat('last', 1), states: withStates ? cat('states', 2) : undefined }; // [B,T,E], [B,E,N], [B,T,E,N]
}

/** `native`: run each group's scan in the native addon (a host op between ONNX segments). */
export function mamba2LayerStage(cfg: Mamba2Config, native = false): StageDef {
  const { dModel: D, dInner: E, nHeads: H, headDim: P, nGroups: G, dState: N, convKernel: K, eps } = cfg;
  const convDim = E + 2 * G * N; // the conv runs over x, B and C
  const inDim = E + convDim + H;
  return {
    key: `mamba2-layer:D${D}:H${H}:P${P}:G${G}:N${N}:K${K}:b${+cfg.useBias}${+cfg.useConvBias}:eps${eps}:dt${cfg.dtLimit.join(',')}:${native ? 'native' : 'onnx'}`,
    build(g, io) {
      const hook = declaredHook(io, MAMBA2_HOOKS);
      const resid = hook('resid_pre', io.act('resid_pre', ['B', 'T', D])); // [B,T,D]
      const norm = hook('norm', rmsNorm(g, resid, io.weight('norm.weight', [D]), eps)); // [B,T,D]
      const inBias = cfg.useBias ? io.weight('mixer.in_proj.bias', [inDim]) : undefined;
      const proj = g.linear(norm, io.weight('mixer.in_proj.weight', [inDim, D]), inBias); // [B,T,E+convDim+H]
      const z = hook('mixer.z', g.slice(proj, 2, 0, E)); // [B,T,E]
      const xIn = hook('mixer.x', g.slice(proj, 2, E, 2 * E)); // [B,T,E]
      const bIn = hook('mixer.B_in', g.slice(proj, 2, 2 * E, 2 * E + G * N)); // [B,T,G·N]
      const cIn = hook('mixer.C_in', g.slice(proj, 2, 2 * E + G * N, E + convDim)); // [B,T,G·N]
      const dtIn = hook('mixer.dt_in', g.slice(proj, 2, E + convDim, inDim)); // [B,T,H]

      const convIn = hook('mixer.conv_in', g.concat([xIn, bIn, cIn], 2)); // [B,T,convDim]
      const { out: convOut, nextState: nextConv } = causalConv(g, io, convIn, convDim, K, cfg.useConvBias);
      const act = g.silu(hook('mixer.conv', convOut)); // [B,T,convDim]
      const x = hook('mixer.ssm_in', g.slice(act, 2, 0, E)); // [B,T,E]
      const Bm = hook('mixer.B', g.slice(act, 2, E, E + G * N)); // [B,T,G·N]
      const Cm = hook('mixer.C', g.slice(act, 2, E + G * N, convDim)); // [B,T,G·N]
      const dt = hook('mixer.dt', clampDt(g, g.softplus(g.add(dtIn, io.weight('mixer.dt_bias', [H]))), cfg.dtLimit)); // [B,T,H]

      const negA = g.neg(g.exp(io.weight('mixer.A_log', [H]))); // [H]
      const A = g.reshape(g.mul(g.reshape(perChannel(g, negA, H, P), [E, 1]), g.constant(new Float32Array(N).fill(1), [N])), [E, N]); // [E,N]
      const h0 = io.act('ssm_state', ['B', E, N]); // [B,E,N]
      const scan = ssdScan(g, io, cfg, native, perChannel(g, dt, H, P), A, x, Bm, Cm, h0);
      if (scan.states) hook('mixer.state', g.reshape(scan.states, [0, 0, H, P, N])); // [B,T,H,P,N], read-only
      const s = hook('mixer.ssm_out', g.add(scan.y, g.mul(x, perChannel(g, io.weight('mixer.D', [H]), H, P)))); // [B,T,E]
      const gate = hook('mixer.gate', g.silu(z)); // [B,T,E]
      const y = hook('mixer.out_proj_in', rmsNorm(g, g.mul(s, gate), io.weight('mixer.norm.weight', [E]), eps)); // [B,T,E]
      const outBias = cfg.useBias ? io.weight('mixer.out_proj.bias', [D]) : undefined;
      const o = hook('mixer.out', g.linear(y, io.weight('mixer.out_proj.weight', [D, E]), outBias)); // [B,T,D]
      io.out('resid_post', hook('resid_post', g.add(resid, o))); // [B,T,D]
      io.out('conv_state', nextConv); // [B,K-1,convDim]
      io.out('ssm_state', scan.last); // [B,E,N]
    },
  };
}

/** dt limits (min, max) after softplus; the default (0, ∞) is the identity on softplus's range. */
function clampDt(g: Graph, dt: Value, [lo, hi]: [number, number]): Value {
  let out = dt; // [B,T,H]
  if (lo > 0) out = g.where(g.greater(g.scalar(lo), out), g.scalar(lo), out);
  if (hi < Infinity) out = g.where(g.greater(out, g.scalar(hi)), g.scalar(hi), out);
  return out;
}
