/**
 * GPT-NeoX / Pythia as stages between hook points, matching Hugging Face
 * GPTNeoXForCausalLM (eager attention).
 *
 * Shape letters: B batch, T tokens, D d_model, H heads, Dh head dim,
 * Rd rotary dims, F d_ff, V vocab, P positions read out by the head.
 *
 * Parallel residual (Pythia): h' = h + Attn(LN1 h) + MLP(LN2 h);
 * sequential: m = h + Attn(LN1 h); h' = m + MLP(LN2 m).
 * Rotary embeddings (rotate-half convention) act on the first Rd dims of each head.
 */
import type { NeoxConfig } from '../io/config';
import { Graph, Value } from '../graph/ir';
import { StageDef } from '../runtime/stage';
import { layerNorm } from './norms';
import { declaredHook, HookPoints } from './hook-points';

/** GPT-NeoX's hook points, declared once here where the graphs below create them. */
export const NEOX_HOOKS = {
  embed: { scope: 'model', shape: '[B,T,D]', meaning: 'token embeddings (residual stream entering layer 0)', aliases: ['hook_embed', 'embed_in'] },
  resid_pre: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream entering the layer', aliases: ['hook_resid_pre', 'hook_in'] },
  ln1: { scope: 'layer', shape: '[B,T,D]', meaning: 'input LayerNorm output (attention input)', aliases: ['ln1.hook_normalized'] },
  'attn.q': { scope: 'layer', shape: '[B,H,T,Dh]', meaning: 'queries after rotary', aliases: ['attn.hook_q'] },
  'attn.k': { scope: 'layer', shape: '[B,H,T,Dh]', meaning: 'keys after rotary', aliases: ['attn.hook_k'] },
  'attn.v': { scope: 'layer', shape: '[B,H,T,Dh]', meaning: 'values', aliases: ['attn.hook_v'] },
  'attn.scores': { scope: 'layer', shape: '[B,H,T,T]', meaning: 'scaled, masked attention scores before softmax (set to -1e9 to cut an edge)', aliases: ['attn.hook_attn_scores'] },
  'attn.pattern': { scope: 'layer', shape: '[B,H,T,T]', meaning: 'attention probabilities', aliases: ['attn.hook_pattern'] },
  'attn.z': { scope: 'layer', shape: '[B,T,D]', meaning: 'attention-weighted values, heads concatenated (dense input)', aliases: ['attn.hook_z'] },
  'attn.out': { scope: 'layer', shape: '[B,T,D]', meaning: 'attention block output after its dense projection', aliases: ['hook_attn_out', 'attn_out', 'attention'] },
  resid_mid: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual after attention (sequential-residual models only)', aliases: ['hook_resid_mid'], only: 'sequential-residual' },
  ln2: { scope: 'layer', shape: '[B,T,D]', meaning: 'post-attention LayerNorm output (MLP input)', aliases: ['ln2.hook_normalized'] },
  'mlp.pre': { scope: 'layer', shape: '[B,T,F]', meaning: 'dense_h_to_4h output, before GELU', aliases: ['mlp.hook_pre'] },
  'mlp.key': { scope: 'layer', shape: '[B,T,F]', meaning: 'GELU output: the key of W_down (dense_4h_to_h input)', aliases: ['mlp.hook_post', 'mlp_key'] },
  'mlp.out': { scope: 'layer', shape: '[B,T,D]', meaning: 'MLP output', aliases: ['hook_mlp_out', 'mlp_out', 'mlp'] },
  resid_post: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream after the layer', aliases: ['hook_resid_post', 'hook_out', ''] },
  final_ln: { scope: 'model', shape: '[B,P,D]', meaning: 'final LayerNorm output at the read-out positions', aliases: ['ln_final.hook_normalized', 'final_layer_norm'] },
  logits: { scope: 'model', shape: '[B,P,V]', meaning: 'next-token logits at the read-out positions', aliases: ['hook_logits'] },
} as const satisfies HookPoints;

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

function applyRotary(g: Graph, x: Value, cos: Value, sin: Value, rd: number, dh: number): Value {
  if (rd === 0) return x;
  const rot = g.slice(x, 3, 0, rd); // [B,H,T,Rd]
  const R = g.constant(rotateHalfMatrix(rd), [rd, rd]);
  const rotated = g.add(g.mul(rot, cos), g.mul(g.matmul(rot, R), sin)); // [B,H,T,Rd]
  return rd === dh ? rotated : g.concat([rotated, g.slice(x, 3, rd, dh)], 3); // [B,H,T,Dh]
}

export function neoxLayerStage(cfg: NeoxConfig): StageDef {
  const { dModel: D, nHead: H, headDim: Dh, rotaryDims: Rd, dFF: F, eps, parallelResidual } = cfg;
  return {
    key: `neox-layer:D${D}:H${H}:Rd${Rd}:F${F}:par${+parallelResidual}:eps${eps}`,
    build(g, io) {
      const hook = declaredHook(io, NEOX_HOOKS);
      const w = (name: string, shape: number[]) => io.weight(name, shape);
      const resid = hook('resid_pre', io.act('resid_pre', ['B', 'T', D])); // [B,T,D]
      const ln1 = hook('ln1', layerNorm(g, resid, w('input_layernorm.weight', [D]), w('input_layernorm.bias', [D]), eps, false));
      const qkv = g.linear(ln1, w('attention.query_key_value.weight', [3 * D, D]), w('attention.query_key_value.bias', [3 * D])); // [B,T,3D]
      const perHead = g.transpose(g.reshape(qkv, [0, 0, H, 3 * Dh]), [0, 2, 1, 3]); // [B,H,T,3Dh]
      const cos = io.act('rope_cos', ['T', Rd]); // [T,Rd]
      const sin = io.act('rope_sin', ['T', Rd]); // [T,Rd]
      const q = hook('attn.q', applyRotary(g, g.slice(perHead, 3, 0, Dh), cos, sin, Rd, Dh)); // [B,H,T,Dh]
      const k = hook('attn.k', applyRotary(g, g.slice(perHead, 3, Dh, 2 * Dh), cos, sin, Rd, Dh)); // [B,H,T,Dh]
      const v = hook('attn.v', g.slice(perHead, 3, 2 * Dh, 3 * Dh)); // [B,H,T,Dh]
      const mask = io.act('attn_mask', ['B', 1, 'T', 'T']); // [B,1,T,T] additive: 0 or −1e9
      const raw = g.mul(g.matmul(q, g.transpose(k, [0, 1, 3, 2])), g.scalar(1 / Math.sqrt(Dh))); // [B,H,T,T]
      const scores = hook('attn.scores', g.add(raw, mask)); // [B,H,T,T]
      const pattern = hook('attn.pattern', g.softmax(scores, -1)); // [B,H,T,T]
      const z = g.reshape(g.transpose(g.matmul(pattern, v), [0, 2, 1, 3]), [0, 0, D]); // [B,T,D]
      const zHooked = hook('attn.z', z);
      const attnOut = hook('attn.out', g.linear(zHooked, w('attention.dense.weight', [D, D]), w('attention.dense.bias', [D]))); // [B,T,D]
      const mid = parallelResidual ? resid : hook('resid_mid', g.add(resid, attnOut)); // [B,T,D]
      const ln2 = hook('ln2', layerNorm(g, mid, w('post_attention_layernorm.weight', [D]), w('post_attention_layernorm.bias', [D]), eps, false));
      const pre = hook('mlp.pre', g.linear(ln2, w('mlp.dense_h_to_4h.weight', [F, D]), w('mlp.dense_h_to_4h.bias', [F]))); // [B,T,F]
      const key = hook('mlp.key', g.gelu(pre)); // [B,T,F]
      const mlpOut = hook('mlp.out', g.linear(key, w('mlp.dense_4h_to_h.weight', [D, F]), w('mlp.dense_4h_to_h.bias', [D]))); // [B,T,D]
      const post = parallelResidual ? g.add(g.add(mlpOut, attnOut), resid) : g.add(mid, mlpOut); // [B,T,D]
      io.out('resid_post', hook('resid_post', post));
    },
  };
}

/** Final LayerNorm and the (untied) unembedding. */
export function neoxHeadStage(cfg: NeoxConfig): StageDef {
  const { dModel: D, vocabSize: V, eps } = cfg;
  return {
    key: `neox-head:D${D}:V${V}:eps${eps}`,
    build(g, io) {
      const hook = declaredHook(io, NEOX_HOOKS);
      const h = io.act('resid', ['B', 'P', D]); // [B,P,D]
      const n = hook('final_ln', layerNorm(g, h, io.weight('final_layer_norm.weight', [D]), io.weight('final_layer_norm.bias', [D]), eps));
      io.out('logits', hook('logits', g.linear(n, io.weight('embed_out.weight', [V, D])))); // [B,P,V]
    },
  };
}

/** Rotary tables for positions 0..T-1 (as HF computes them, in float64 then rounded). */
export function rotaryTables(cfg: NeoxConfig, T: number): { cos: Float32Array; sin: Float32Array } {
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
