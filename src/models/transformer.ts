/**
 * GPT-2, GPT-NeoX (Pythia) and the Llama family (Llama, Mistral, Qwen2, Qwen3) as stages between hook
 * points, one graph for all, driven by the config and the family's adapter table (transformer-adapters.ts);
 * matches Hugging Face GPT2LMHeadModel / GPTNeoXForCausalLM / LlamaForCausalLM / Qwen2ForCausalLM /
 * Qwen3ForCausalLM (eager attention).
 *
 * Shape letters: B batch, T tokens, D d_model, H query heads, Hkv key/value heads, Dh head dim,
 * Rd rotary dims, F d_ff, V vocab, P read-out positions.
 *
 * Sequential residual: m = h + Attn(N1 h); h' = m + MLP(N2 m), N LayerNorm (GPT-2, NeoX) or RMSNorm;
 * parallel residual (Pythia): h' = h + Attn(N1 h) + MLP(N2 h).
 */
import type { NeoxConfig, TransformerConfig } from '../io/config-types';
import { Graph, Value } from '../graph/ir';
import { StageDef, StageIO } from '../runtime/stage';
import { layerNorm, rmsNorm } from './norms';
import { declaredHook, HookPoints } from './hook-points';
import { applyRotary } from './rotary';
import { maskShape, ropeShape, withCache } from './kv-cache';
import { TRANSFORMER_ADAPTERS, TransformerAdapter, TransformerSpec, transformerSpec } from './transformer-adapters';

/** The transformers' hook points (TransformerLens names as aliases), declared where the graphs below create them. */
export const TRANSFORMER_HOOKS = {
  embed: { scope: 'model', shape: '[B,T,D]', meaning: 'token embeddings, plus learned position embeddings for GPT-2 (residual stream entering layer 0)', aliases: ['hook_embed', 'embed_tokens', 'wte'] },
  resid_pre: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream entering the layer', aliases: ['hook_resid_pre', 'hook_in'] },
  ln1: { scope: 'layer', shape: '[B,T,D]', meaning: 'first norm output (attention input)', aliases: ['ln1.hook_normalized', 'input_layernorm', 'ln_1'] },
  'attn.q': { scope: 'layer', shape: '[B,H,T,Dh]', meaning: 'queries (after q/k norm and rotary where the model has them)', aliases: ['attn.hook_q'] },
  'attn.k': { scope: 'layer', shape: '[B,Hkv,T,Dh]', meaning: 'keys, one per key/value head (after q/k norm and rotary)', aliases: ['attn.hook_k'] },
  'attn.v': { scope: 'layer', shape: '[B,Hkv,T,Dh]', meaning: 'values, one per key/value head', aliases: ['attn.hook_v'] },
  'attn.scores': { scope: 'layer', shape: '[B,H,T,T]', meaning: 'scaled, masked attention scores before softmax (set to -1e9 to cut an edge)', aliases: ['attn.hook_attn_scores'] },
  'attn.pattern': { scope: 'layer', shape: '[B,H,T,T]', meaning: 'attention probabilities', aliases: ['attn.hook_pattern'] },
  'attn.z': { scope: 'layer', shape: '[B,T,HDh]', meaning: 'attention-weighted values, heads concatenated (output projection input)', aliases: ['attn.hook_z'] },
  'attn.out': { scope: 'layer', shape: '[B,T,D]', meaning: 'attention block output after its output projection', aliases: ['hook_attn_out', 'attn_out', 'attention'] },
  resid_mid: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual after attention', aliases: ['hook_resid_mid'] },
  ln2: { scope: 'layer', shape: '[B,T,D]', meaning: 'second norm output (MLP input)', aliases: ['ln2.hook_normalized', 'post_attention_layernorm', 'ln_2'] },
  'mlp.pre': { scope: 'layer', shape: '[B,T,F]', meaning: 'pre-activation: GPT-2 c_fc / NeoX dense_h_to_4h output, Llama gate_proj output', aliases: ['mlp.hook_pre'] },
  'mlp.pre_linear': { scope: 'layer', shape: '[B,T,F]', meaning: 'gated MLPs: up_proj output (multiplies the activation)', aliases: ['mlp.hook_pre_linear'] },
  'mlp.key': { scope: 'layer', shape: '[B,T,F]', meaning: 'the key of the down projection (GELU output; SiLU(gate) ⊙ up)', aliases: ['mlp.hook_post', 'mlp_key'] },
  'mlp.out': { scope: 'layer', shape: '[B,T,D]', meaning: 'MLP output', aliases: ['hook_mlp_out', 'mlp_out', 'mlp'] },
  resid_post: { scope: 'layer', shape: '[B,T,D]', meaning: 'residual stream after the layer', aliases: ['hook_resid_post', 'hook_out', ''] },
  final_ln: { scope: 'model', shape: '[B,P,D]', meaning: 'final norm output at the read-out positions', aliases: ['ln_final.hook_normalized', 'ln_f', 'norm'] },
  logits: { scope: 'model', shape: '[B,P,V]', meaning: 'next-token logits at the read-out positions', aliases: ['hook_logits'] },
} as const satisfies HookPoints;

/** GPT-2's MLP has no second (linear) branch. */
const { 'mlp.pre_linear': _gatedOnly, ...ungated } = TRANSFORMER_HOOKS;
export const UNGATED_TRANSFORMER_HOOKS: HookPoints = ungated;

/** GPT-NeoX: the ungated points, resid_mid only where the residual is sequential, and NeoX's module names as aliases. */
export const NEOX_HOOKS: HookPoints = {
  ...ungated,
  embed: { ...ungated.embed, aliases: [...ungated.embed.aliases, 'embed_in'] },
  resid_mid: { ...ungated.resid_mid, meaning: 'residual after attention (sequential-residual models only)', only: 'sequential-residual' },
  final_ln: { ...ungated.final_ln, aliases: [...ungated.final_ln.aliases, 'final_layer_norm'] },
};

type Hook = ReturnType<typeof declaredHook<keyof typeof TRANSFORMER_HOOKS>>;

/** The norm of the config's kind over the last axis of x (`fusable: false`: see TransformerAdapter.unfusedLayerNorms). */
function norm(g: Graph, io: StageIO, cfg: TransformerSpec, module: string, x: Value, dim: number, fusable = true): Value {
  const w = io.weight(`${module}.weight`, [dim]);
  return cfg.norm === 'layernorm' ? layerNorm(g, x, w, io.weight(`${module}.bias`, [dim]), cfg.eps, fusable) : rmsNorm(g, x, w, cfg.eps);
}

function project(io: StageIO, g: Graph, x: Value, module: string, out: number, inDim: number, bias: boolean): Value {
  return g.linear(x, io.weight(`${module}.weight`, [out, inDim]), bias ? io.weight(`${module}.bias`, [out]) : undefined);
}

/** GPT-2's tanh GELU ("gelu_new"): 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))). */
function geluNew(g: Graph, x: Value): Value {
  const cube = g.mul(x, g.square(x)); // [...]
  const inner = g.mul(g.scalar(Math.sqrt(2 / Math.PI)), g.add(x, g.mul(g.scalar(0.044715), cube))); // [...]
  return g.mul(g.mul(g.scalar(0.5), x), g.add(g.scalar(1), g.tanh(inner)));
}

/** [B,T,n·Dh] → [B,n,T,Dh]. */
const splitHeads = (g: Graph, x: Value, n: number, dh: number) => g.transpose(g.reshape(x, [0, 0, n, dh]), [0, 2, 1, 3]);

/** Grouped-query attention: key/value head j serves query heads j·G … j·G+G−1 ([B,Hkv,T,Dh] → [B,H,T,Dh]). */
function repeatKv(g: Graph, x: Value, nHead: number, nKv: number): Value {
  if (nHead === nKv) return x;
  const group = nHead / nKv;
  const heads = Array.from({ length: nHead }, (_, h) => g.slice(x, 1, Math.floor(h / group), Math.floor(h / group) + 1)); // each [B,1,T,Dh]
  return g.concat(heads, 1); // [B,H,T,Dh]
}

/** q, k, v per head ([B,H,T,Dh], [B,Hkv,T,Dh] ×2) from the adapter's one fused or three projections. */
function qkvHeads(g: Graph, io: StageIO, cfg: TransformerSpec, a: TransformerAdapter, x: Value): [Value, Value, Value] {
  const { dModel: D, nHead: H, nKvHeads: Hkv, headDim: Dh } = cfg;
  if ('fused' in a.qkv && a.qkv.perHead) {
    const qkv = project(io, g, x, a.qkv.fused, 3 * H * Dh, D, cfg.qkvBias); // [B,T,3·H·Dh] columns [q₀ k₀ v₀ | q₁ …]
    const perHead = g.transpose(g.reshape(qkv, [0, 0, H, 3 * Dh]), [0, 2, 1, 3]); // [B,H,T,3Dh]
    return [g.slice(perHead, 3, 0, Dh), g.slice(perHead, 3, Dh, 2 * Dh), g.slice(perHead, 3, 2 * Dh, 3 * Dh)]; // each [B,H,T,Dh]
  }
  if ('fused' in a.qkv) {
    const qkv = project(io, g, x, a.qkv.fused, (H + 2 * Hkv) * Dh, D, cfg.qkvBias); // [B,T,(H+2Hkv)Dh] columns [q | k | v]
    const q = g.slice(qkv, 2, 0, H * Dh); // [B,T,H·Dh]
    const k = g.slice(qkv, 2, H * Dh, (H + Hkv) * Dh); // [B,T,Hkv·Dh]
    const v = g.slice(qkv, 2, (H + Hkv) * Dh, (H + 2 * Hkv) * Dh); // [B,T,Hkv·Dh]
    return [splitHeads(g, q, H, Dh), splitHeads(g, k, Hkv, Dh), splitHeads(g, v, Hkv, Dh)];
  }
  const q = project(io, g, x, a.qkv.q, H * Dh, D, cfg.qkvBias); // [B,T,H·Dh]
  const k = project(io, g, x, a.qkv.k, Hkv * Dh, D, cfg.qkvBias); // [B,T,Hkv·Dh]
  const v = project(io, g, x, a.qkv.v, Hkv * Dh, D, cfg.qkvBias); // [B,T,Hkv·Dh]
  return [splitHeads(g, q, H, Dh), splitHeads(g, k, Hkv, Dh), splitHeads(g, v, Hkv, Dh)];
}

function attention(g: Graph, io: StageIO, hook: Hook, cfg: TransformerSpec, a: TransformerAdapter, x: Value): Value {
  const { dModel: D, nHead: H, nKvHeads: Hkv, headDim: Dh, rotaryDims: Rd } = cfg;
  let [qh, kh, vh] = qkvHeads(g, io, cfg, a, x); // [B,H,T,Dh], [B,Hkv,T,Dh] ×2
  if (a.qNorm && a.kNorm) {
    qh = rmsNorm(g, qh, io.weight(`${a.qNorm}.weight`, [Dh]), cfg.eps); // [B,H,T,Dh]
    kh = rmsNorm(g, kh, io.weight(`${a.kNorm}.weight`, [Dh]), cfg.eps); // [B,Hkv,T,Dh]
  }
  if (cfg.positions === 'rotary') {
    const cos = io.act('rope_cos', ropeShape(io, Rd)); // [T,Rd] ([B,1,T,Rd] with a cache)
    const sin = io.act('rope_sin', ropeShape(io, Rd)); // [T,Rd] ([B,1,T,Rd] with a cache)
    qh = applyRotary(g, qh, cos, sin, Rd, Dh); // [B,H,T,Dh]
    kh = applyRotary(g, kh, cos, sin, Rd, Dh); // [B,Hkv,T,Dh]
  }
  const qHooked = hook('attn.q', qh); // [B,H,T,Dh]
  const kHooked = hook('attn.k', kh); // [B,Hkv,T,Dh]
  const vHooked = hook('attn.v', vh); // [B,Hkv,T,Dh]
  const mask = io.act('attn_mask', maskShape(io)); // [B,1,T,T] additive: 0 or −1e9 (keys [B,1,T,S+T] with a cache)
  const kAll = repeatKv(g, withCache(g, io, 'k', kHooked), H, Hkv); // [B,H,T,Dh]
  const raw = g.mul(g.matmul(qHooked, g.transpose(kAll, [0, 1, 3, 2])), g.scalar(1 / Math.sqrt(Dh))); // [B,H,T,T]
  const scores = hook('attn.scores', g.add(raw, mask)); // [B,H,T,T]
  const pattern = hook('attn.pattern', g.softmax(scores, -1)); // [B,H,T,T]
  const z = g.reshape(g.transpose(g.matmul(pattern, repeatKv(g, withCache(g, io, 'v', vHooked), H, Hkv)), [0, 2, 1, 3]), [0, 0, H * Dh]); // [B,T,H·Dh]
  return hook('attn.out', project(io, g, hook('attn.z', z), a.out, D, H * Dh, cfg.outBias)); // [B,T,D]
}

function mlp(g: Graph, io: StageIO, hook: Hook, cfg: TransformerSpec, a: TransformerAdapter, x: Value): Value {
  const { dModel: D, dFF: F } = cfg;
  let key: Value; // [B,T,F]
  if (cfg.mlp !== 'silu_gated') {
    const pre = hook('mlp.pre', project(io, g, x, a.up, F, D, cfg.mlpBias)); // [B,T,F]
    key = cfg.mlp === 'gelu' ? g.gelu(pre) : geluNew(g, pre); // [B,T,F]
  } else {
    const pre = hook('mlp.pre', project(io, g, x, a.gate!, F, D, cfg.mlpBias)); // [B,T,F]
    const linear = hook('mlp.pre_linear', project(io, g, x, a.up, F, D, cfg.mlpBias)); // [B,T,F]
    key = g.mul(g.silu(pre), linear); // [B,T,F]
  }
  return hook('mlp.out', project(io, g, hook('mlp.key', key), a.down, D, F, cfg.mlpBias)); // [B,T,D]
}

export function transformerLayerStage(config: TransformerConfig | NeoxConfig): StageDef {
  const cfg = transformerSpec(config);
  const a = TRANSFORMER_ADAPTERS[cfg.arch];
  const { dModel: D, parallelResidual } = cfg;
  const fusable = !a.unfusedLayerNorms;
  return {
    key: `tf-layer:${cfg.arch}:D${D}:H${cfg.nHead}:Hkv${cfg.nKvHeads}:Dh${cfg.headDim}:Rd${cfg.rotaryDims}:F${cfg.dFF}:eps${cfg.eps}:b${+cfg.qkvBias}${+cfg.outBias}${+cfg.mlpBias}:par${+parallelResidual}`,
    build(g, io) {
      const hook = declaredHook(io, TRANSFORMER_HOOKS);
      const resid = hook('resid_pre', io.act('resid_pre', ['B', 'T', D])); // [B,T,D]
      const attnOut = attention(g, io, hook, cfg, a, hook('ln1', norm(g, io, cfg, a.ln1, resid, D, fusable))); // [B,T,D]
      const mid = parallelResidual ? resid : hook('resid_mid', g.add(resid, attnOut)); // [B,T,D]
      const mlpOut = mlp(g, io, hook, cfg, a, hook('ln2', norm(g, io, cfg, a.ln2, mid, D, fusable))); // [B,T,D]
      const post = parallelResidual ? g.add(g.add(mlpOut, attnOut), resid) : g.add(mid, mlpOut); // [B,T,D]
      io.out('resid_post', hook('resid_post', post));
    },
  };
}

/** Final norm and the unembedding (a tied head reads the embedding, resolved by Model.weight). */
export function transformerHeadStage(config: TransformerConfig | NeoxConfig): StageDef {
  const cfg = transformerSpec(config);
  const a = TRANSFORMER_ADAPTERS[cfg.arch];
  const { dModel: D, vocabSize: V } = cfg;
  return {
    key: `tf-head:${cfg.arch}:D${D}:V${V}:eps${cfg.eps}`,
    build(g, io) {
      const hook = declaredHook(io, TRANSFORMER_HOOKS);
      const h = io.act('resid', ['B', 'P', D]); // [B,P,D]
      const n = hook('final_ln', norm(g, io, cfg, a.finalNorm, h, D)); // [B,P,D]
      io.out('logits', hook('logits', g.linear(n, io.weight(a.head, [V, D])))); // [B,P,V]
    },
  };
}
