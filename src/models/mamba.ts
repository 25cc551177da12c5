/**
 * Mamba (Gu & Dao 2023) as stages between hook points, written to match
 * Hugging Face MambaForCausalLM's reference path and mamba-minimal.
 *
 * Shape letters: B batch, T tokens, D d_model, E d_inner, N d_state,
 * R dt_rank, K conv width, V vocab.
 *
 * A block: n = RMSNorm(h); [x; z] = W_in n; c = causal depthwise conv(x);
 * u = SiLU(c); [δ; B; C] = W_x u; Δ = softplus(W_dt δ + b); s = scan(Δ, A, u, B, C) + D⊙u;
 * g = SiLU(z); o = W_out (s ⊙ g); h' = h + o.
 * Falcon-Mamba (cfg.mixerRmsEps set): δ, B and C each pass a weightless RMS norm
 * (x / sqrt(mean(x²) + mixer_rms_eps)) right after x_proj, as FalconMambaMixer does.
 */
import type { MambaConfig } from '../io/config';
import { Graph, Value } from '../graph/ir';
import { selectiveScan } from '../graph/selective-scan';
import { nativeScanOp } from '../graph/native-scan';
import { StageDef } from '../runtime/stage';
import { rmsNorm } from './norms';
import { causalConv } from './causal-conv';
import { declaredHook, HookPoints } from './hook-points';

/** Mamba's hook points, declared once here where the graphs below create them. */
export const MAMBA_HOOKS = {
  embed: { scope: 'model', shape: '[B,T,D]', meaning: 'token embeddings (residual stream entering layer 0)', aliases: ['hook_embed', 'embeddings'] },
  resid_pre: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream entering the block, h^{l-1}', aliases: ['hook_resid_pre', 'hook_in'] },
  norm: { scope: 'layer', shape: '[B,T,D]', meaning: 'RMSNorm output: the key of W_a and W_g (in_proj input)', aliases: ['hook_normalized_input', 'hook_mixer_in'] },
  'mixer.x': { scope: 'layer', shape: '[B,T,E]', meaning: 'a = W_a n, the SSM half of in_proj (romba ssm_after_up_proj)', aliases: ['ssm_after_up_proj', 'hook_in_proj', 'x_in_proj'] },
  'mixer.z': { scope: 'layer', shape: '[B,T,E]', meaning: 'z = W_g n, the gate half of in_proj (romba mlp_after_up_proj)', aliases: ['mlp_after_up_proj', 'hook_skip', 'z_in_proj'] },
  'mixer.conv': { scope: 'layer', shape: '[B,T,E]', meaning: 'causal depthwise conv1d output, before SiLU', aliases: ['ssm_after_conv1D', 'hook_conv', 'conv_out'] },
  'mixer.ssm_in': { scope: 'layer', shape: '[B,T,E]', meaning: 'u = SiLU(conv), the SSM input', aliases: ['ssm_after_silu', 'hook_ssm_input', 'ssm_in'] },
  'mixer.dt': { scope: 'layer', shape: '[B,T,E]', meaning: 'Δ = softplus(W_dt δ + b), the step size', aliases: ['hook_delta', 'dt'] },
  'mixer.B': { scope: 'layer', shape: '[B,T,N]', meaning: 'input matrix B_t', aliases: ['hook_B', 'B'] },
  'mixer.C': { scope: 'layer', shape: '[B,T,N]', meaning: 'output matrix C_t', aliases: ['hook_C', 'C'] },
  'mixer.state': { scope: 'layer', shape: '[B,T,E,N]', meaning: 'SSM state h_t after each token (read-only; patch with statePatches)' },
  'mixer.ssm_out': { scope: 'layer', shape: '[B,T,E]', meaning: 's = scan output incl. D skip, before gating (paper s_i)', aliases: ['ssm_after_ssm', 'hook_ssm_output', 'ssm_out'] },
  'mixer.gate': { scope: 'layer', shape: '[B,T,E]', meaning: 'g = SiLU(z) (paper g_i)', aliases: ['mlp_after_silu', 'gate'] },
  'mixer.out_proj_in': { scope: 'layer', shape: '[B,T,E]', meaning: 's ⊙ g: the key of W_o (out_proj input)', aliases: ['before_down_proj', 'hook_after_skip', 'out_proj_in'] },
  'mixer.out': {
    scope: 'layer', shape: '[B,T,D]', meaning: 'o = W_o(s ⊙ g), the block output before the residual add (paper o_i)',
    aliases: ['after_down_proj', 'hook_out_proj', 'hook_mixer_out', 'mixer_out', 'mixer'],
    deprecated: { hook_ssm_out: 'it reads like mixer.ssm_out (s) but means mixer.out (o): write hook_out_proj or mixer.out for o, mixer.ssm_out for s' },
  },
  resid_post: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream after the block, h^l', aliases: ['hook_resid_post', 'hook_out', ''] },
  norm_f: { scope: 'model', shape: '[B,P,D]', meaning: 'final RMSNorm output at the read-out positions', aliases: ['ln_final.hook_normalized', 'hook_norm'] },
  logits: { scope: 'model', shape: '[B,P,V]', meaning: 'next-token logits at the read-out positions', aliases: ['hook_logits'] },
} as const satisfies HookPoints;

/** `native`: run the selective scan in the native addon (a host op between two ONNX segments). */
export function mambaLayerStage(cfg: MambaConfig, native = false): StageDef {
  const { dModel: D, dInner: E, dState: N, dtRank: R, convKernel: K, eps } = cfg;
  return {
    key: `mamba-layer:D${D}:E${E}:N${N}:R${R}:K${K}:b${+cfg.useBias}${+cfg.useConvBias}:eps${eps}:rms${cfg.mixerRmsEps ?? '-'}:${native ? 'native' : 'onnx'}`,
    build(g, io) {
      const hook = declaredHook(io, MAMBA_HOOKS);
      const resid = hook('resid_pre', io.act('resid_pre', ['B', 'T', D])); // [B,T,D]
      const norm = hook('norm', rmsNorm(g, resid, io.weight('norm.weight', [D]), eps)); // [B,T,D]
      const inBias = cfg.useBias ? io.weight('mixer.in_proj.bias', [2 * E]) : undefined;
      const xz = g.linear(norm, io.weight('mixer.in_proj.weight', [2 * E, D]), inBias); // [B,T,2E]
      const x = hook('mixer.x', g.slice(xz, 2, 0, E)); // [B,T,E]
      const z = hook('mixer.z', g.slice(xz, 2, E, 2 * E)); // [B,T,E]

      const { out: convOut, nextState: nextConv } = causalConv(g, io, x, E, K, cfg.useConvBias);
      const conv = hook('mixer.conv', convOut); // [B,T,E]
      const u = hook('mixer.ssm_in', g.silu(conv)); // [B,T,E]

      const xdbl = g.linear(u, io.weight('mixer.x_proj.weight', [R + 2 * N, E])); // [B,T,R+2N]
      // Falcon-Mamba's weightless norms of δ, B and C; the identity for plain Mamba.
      const mixerNorm = (v: Value) => (cfg.mixerRmsEps === undefined ? v : rmsNorm(g, v, undefined, cfg.mixerRmsEps));
      const delta = mixerNorm(g.slice(xdbl, 2, 0, R)); // [B,T,R]
      const Bm = hook('mixer.B', mixerNorm(g.slice(xdbl, 2, R, R + N))); // [B,T,N]
      const Cm = hook('mixer.C', mixerNorm(g.slice(xdbl, 2, R + N, R + 2 * N))); // [B,T,N]
      const dtLin = g.linear(delta, io.weight('mixer.dt_proj.weight', [E, R]), io.weight('mixer.dt_proj.bias', [E])); // [B,T,E]
      const dt = hook('mixer.dt', g.softplus(dtLin)); // [B,T,E]

      const A = g.neg(g.exp(io.weight('mixer.A_log', [E, N]))); // [E,N]
      const h0 = io.act('ssm_state', ['B', E, N]); // [B,E,N]
      const scan = native
        ? io.host(nativeScanOp(E, N, !!io.options.states), { dt, A, u, B: Bm, C: Cm, h0 })
        : selectiveScan(g, dt, A, u, Bm, Cm, h0, !!io.options.states);
      if (scan.states) hook('mixer.state', scan.states); // [B,T,E,N], read-only
      const s = hook('mixer.ssm_out', g.add(scan.y, g.mul(u, io.weight('mixer.D', [E])))); // [B,T,E]
      const gate = hook('mixer.gate', g.silu(z)); // [B,T,E]
      const p = hook('mixer.out_proj_in', g.mul(s, gate)); // [B,T,E]
      const outBias = cfg.useBias ? io.weight('mixer.out_proj.bias', [D]) : undefined;
      const o = hook('mixer.out', g.linear(p, io.weight('mixer.out_proj.weight', [D, E]), outBias)); // [B,T,D]
      io.out('resid_post', hook('resid_post', g.add(resid, o))); // [B,T,D]
      io.out('conv_state', nextConv); // [B,K-1,E]
      io.out('ssm_state', scan.last); // [B,E,N]
    },
  };
}

/** Final RMSNorm and the (tied) unembedding; Mamba-2's head is the same graph. */
export function mambaHeadStage(cfg: Pick<MambaConfig, 'dModel' | 'vocabSize' | 'eps'>): StageDef {
  const { dModel: D, vocabSize: V, eps } = cfg;
  return {
    key: `mamba-head:D${D}:V${V}:eps${eps}`,
    build(g: Graph, io) {
      const hook = declaredHook(io, MAMBA_HOOKS);
      const h = io.act('resid', ['B', 'P', D]); // [B,P,D]
      const n: Value = hook('norm_f', rmsNorm(g, h, io.weight('norm_f.weight', [D]), eps)); // [B,P,D]
      io.out('logits', hook('logits', g.linear(n, io.weight('lm_head.weight', [V, D])))); // [B,P,V]
    },
  };
}
