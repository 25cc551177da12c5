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
 */
import type { MambaConfig } from '../io/config';
import { Graph, Value } from '../graph/ir';
import { selectiveScan } from '../graph/selective-scan';
import { nativeScanOp } from '../graph/native-scan';
import { StageDef } from '../runtime/stage';
import { rmsNorm } from './norms';

export const MAMBA_LAYER_HOOKS = [
  'resid_pre', 'norm', 'mixer.x', 'mixer.z', 'mixer.conv', 'mixer.ssm_in', 'mixer.dt', 'mixer.B', 'mixer.C',
  'mixer.state', 'mixer.ssm_out', 'mixer.gate', 'mixer.out_proj_in', 'mixer.out', 'resid_post',
] as const;

/** `native`: run the selective scan in the native addon (a host op between two ONNX segments). */
export function mambaLayerStage(cfg: MambaConfig, native = false): StageDef {
  const { dModel: D, dInner: E, dState: N, dtRank: R, convKernel: K, eps } = cfg;
  return {
    key: `mamba-layer:D${D}:E${E}:N${N}:R${R}:K${K}:b${+cfg.useBias}${+cfg.useConvBias}:eps${eps}:${native ? 'native' : 'onnx'}`,
    build(g, io) {
      const resid = io.hook('resid_pre', io.act('resid_pre', ['B', 'T', D])); // [B,T,D]
      const norm = io.hook('norm', rmsNorm(g, resid, io.weight('norm.weight', [D]), eps)); // [B,T,D]
      const inBias = cfg.useBias ? io.weight('mixer.in_proj.bias', [2 * E]) : undefined;
      const xz = g.linear(norm, io.weight('mixer.in_proj.weight', [2 * E, D]), inBias); // [B,T,2E]
      const x = io.hook('mixer.x', g.slice(xz, 2, 0, E)); // [B,T,E]
      const z = io.hook('mixer.z', g.slice(xz, 2, E, 2 * E)); // [B,T,E]

      // Causal depthwise conv over [previous K-1 inputs ; x]; zeros at the start of a sequence.
      const convState = io.act('conv_state', ['B', K - 1, E]); // [B,K-1,E]
      const xe = g.concat([convState, x], 1); // [B,K-1+T,E]
      const w = g.transpose(g.reshape(io.weight('mixer.conv1d.weight', [E, 1, K]), [E, K]), [1, 0]); // [K,E]
      let conv = cfg.useConvBias ? io.weight('mixer.conv1d.bias', [E]) : g.scalar(0); // [E]
      for (let k = 0; k < K; k++) {
        const tap = g.slice(w, 0, k, k + 1); // [1,E]
        const shifted = g.slice(xe, 1, k, k === K - 1 ? Infinity : k - (K - 1), 'T'); // [B,T,E]: x_{t-(K-1)+k}
        conv = g.add(conv, g.mul(shifted, tap)); // [B,T,E]
      }
      conv = io.hook('mixer.conv', conv);
      const u = io.hook('mixer.ssm_in', g.silu(conv)); // [B,T,E]

      const xdbl = g.linear(u, io.weight('mixer.x_proj.weight', [R + 2 * N, E])); // [B,T,R+2N]
      const delta = g.slice(xdbl, 2, 0, R); // [B,T,R]
      const Bm = io.hook('mixer.B', g.slice(xdbl, 2, R, R + N)); // [B,T,N]
      const Cm = io.hook('mixer.C', g.slice(xdbl, 2, R + N, R + 2 * N)); // [B,T,N]
      const dtLin = g.linear(delta, io.weight('mixer.dt_proj.weight', [E, R]), io.weight('mixer.dt_proj.bias', [E])); // [B,T,E]
      const dt = io.hook('mixer.dt', g.softplus(dtLin)); // [B,T,E]

      const A = g.neg(g.exp(io.weight('mixer.A_log', [E, N]))); // [E,N]
      const h0 = io.act('ssm_state', ['B', E, N]); // [B,E,N]
      const scan = native
        ? io.host(nativeScanOp(E, N, !!io.options.states), { dt, A, u, B: Bm, C: Cm, h0 })
        : selectiveScan(g, dt, A, u, Bm, Cm, h0, !!io.options.states);
      if (scan.states) io.hook('mixer.state', scan.states); // [B,T,E,N], read-only
      const s = io.hook('mixer.ssm_out', g.add(scan.y, g.mul(u, io.weight('mixer.D', [E])))); // [B,T,E]
      const gate = io.hook('mixer.gate', g.silu(z)); // [B,T,E]
      const p = io.hook('mixer.out_proj_in', g.mul(s, gate)); // [B,T,E]
      const outBias = cfg.useBias ? io.weight('mixer.out_proj.bias', [D]) : undefined;
      const o = io.hook('mixer.out', g.linear(p, io.weight('mixer.out_proj.weight', [D, E]), outBias)); // [B,T,D]
      io.out('resid_post', io.hook('resid_post', g.add(resid, o))); // [B,T,D]
      io.out('conv_state', g.slice(xe, 1, -(K - 1), Infinity, K - 1)); // [B,K-1,E]
      io.out('ssm_state', scan.last); // [B,E,N]
    },
  };
}

/** Final RMSNorm and the (tied) unembedding. */
export function mambaHeadStage(cfg: MambaConfig): StageDef {
  const { dModel: D, vocabSize: V, eps } = cfg;
  return {
    key: `mamba-head:D${D}:V${V}:eps${eps}`,
    build(g: Graph, io) {
      const h = io.act('resid', ['B', 'P', D]); // [B,P,D]
      const n: Value = io.hook('norm_f', rmsNorm(g, h, io.weight('norm_f.weight', [D]), eps)); // [B,P,D]
      io.out('logits', io.hook('logits', g.linear(n, io.weight('lm_head.weight', [V, D])))); // [B,P,V]
    },
  };
}
