/**
 * The decoder-only transformers as data (pyvene's habit): per family, where each weight lives in a
 * Hugging Face checkpoint and how it is stored. models/transformer.ts builds every family's forward
 * from one table, so a Llama-shaped model is a table entry, not a new graph.
 *
 * Canonical names drop the model prefix (`transformer.`, `model.`) and spell layers `layers.{i}.`,
 * like the rest of factlens. Every matrix is seen in PyTorch Linear layout [out,in]: GPT-2's Conv1D
 * weights are stored [in,out] and are transposed when read (io/checkpoint.ts).
 */
import type { NeoxConfig, TransformerArch, TransformerConfig } from '../io/config-types';

export interface TransformerAdapter {
  /** Prefix of the base model's weights in a *ForCausalLM checkpoint. */
  modelPrefix: string;
  /** How the file spells layer i's prefix (before it becomes `layers.{i}.`). */
  layerPrefix: string;
  embed: string;
  /** Learned position embedding [maxPositions, D] (GPT-2 only). */
  posEmbed?: string;
  finalNorm: string;
  head: string;
  /** Per layer: module names (".weight" / ".bias" appended). */
  ln1: string;
  ln2: string;
  /**
   * One fused projection or three. Fused output columns are [q | k | v] (GPT-2), or with `perHead`
   * interleaved per head, [q₀ k₀ v₀ | q₁ k₁ v₁ | …] (GPT-NeoX's query_key_value).
   */
  qkv: { fused: string; perHead?: boolean } | { q: string; k: string; v: string };
  out: string;
  up: string;
  /** Gated MLPs: the projection through the activation (SiLU(gate) ⊙ up). */
  gate?: string;
  down: string;
  /** Qwen3: per-head RMSNorm of q and k. */
  qNorm?: string;
  kNorm?: string;
  /** Modules stored as Conv1D [in,out] (transposed on read). */
  conv1d: readonly string[];
  /** Non-weight buffers older checkpoints carry (masks, rotary tables), recomputed, never loaded. */
  buffers: RegExp;
  /**
   * GPT-NeoX: the layers' LayerNorms are written unfused (norms.ts), so that Pythia's two parallel
   * norms of one input give bit-identical numbers however a layer is cut at hook points.
   */
  unfusedLayerNorms?: boolean;
}

const GPT2: TransformerAdapter = {
  modelPrefix: 'transformer.',
  layerPrefix: 'h.',
  embed: 'wte.weight',
  posEmbed: 'wpe.weight',
  finalNorm: 'ln_f',
  head: 'lm_head.weight',
  ln1: 'ln_1',
  ln2: 'ln_2',
  qkv: { fused: 'attn.c_attn' },
  out: 'attn.c_proj',
  up: 'mlp.c_fc',
  down: 'mlp.c_proj',
  conv1d: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
  buffers: /^layers\.\d+\.attn\.(bias|masked_bias)$/,
};

const LLAMA: TransformerAdapter = {
  modelPrefix: 'model.',
  layerPrefix: 'layers.',
  embed: 'embed_tokens.weight',
  finalNorm: 'norm',
  head: 'lm_head.weight',
  ln1: 'input_layernorm',
  ln2: 'post_attention_layernorm',
  qkv: { q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj' },
  out: 'self_attn.o_proj',
  up: 'mlp.up_proj',
  gate: 'mlp.gate_proj',
  down: 'mlp.down_proj',
  conv1d: [],
  buffers: /^layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/,
};

/** GPT-NeoX / Pythia: per-head interleaved fused q/k/v, biases everywhere, exact GELU, usually a parallel residual. */
const GPT_NEOX: TransformerAdapter = {
  modelPrefix: 'gpt_neox.',
  layerPrefix: 'layers.',
  embed: 'embed_in.weight',
  finalNorm: 'final_layer_norm',
  head: 'embed_out.weight',
  ln1: 'input_layernorm',
  ln2: 'post_attention_layernorm',
  qkv: { fused: 'attention.query_key_value', perHead: true },
  out: 'attention.dense',
  up: 'mlp.dense_h_to_4h',
  down: 'mlp.dense_4h_to_h',
  conv1d: [],
  buffers: /^layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/,
  unfusedLayerNorms: true,
};

/** Qwen3 is Llama with a per-head RMSNorm on q and k. */
const QWEN3: TransformerAdapter = { ...LLAMA, qNorm: 'self_attn.q_norm', kNorm: 'self_attn.k_norm' };

export const TRANSFORMER_ADAPTERS: Record<TransformerArch | 'gpt_neox', TransformerAdapter> = { gpt2: GPT2, llama: LLAMA, mistral: LLAMA, qwen2: LLAMA, qwen3: QWEN3, gpt_neox: GPT_NEOX };

/** What the one transformer graph reads: a TransformerConfig, or GPT-NeoX's config in the same terms. */
export type TransformerSpec = Omit<TransformerConfig, 'arch' | 'mlp'> & {
  arch: TransformerArch | 'gpt_neox';
  /** 'gelu': exact (erf) GELU on one projection, GPT-NeoX. */
  mlp: TransformerConfig['mlp'] | 'gelu';
  /** h' = h + Attn(N1 h) + MLP(N2 h) (Pythia) instead of the sequential m = h + Attn(N1 h); h' = m + MLP(N2 m). */
  parallelResidual: boolean;
};

/** GPT-NeoX's config as data for the shared graph: LayerNorm, no GQA, biases on every projection, exact GELU. */
export function transformerSpec(c: TransformerConfig | NeoxConfig): TransformerSpec {
  if (c.arch !== 'gpt_neox') return { ...c, parallelResidual: false };
  return { ...c, nKvHeads: c.nHead, norm: 'layernorm', mlp: 'gelu', positions: 'rotary', qkvBias: true, outBias: true, mlpBias: true, qkNorm: false };
}

/** Stored name → canonical name (prefix dropped, layers spelled `layers.{i}.`), or null for a buffer. */
export function transformerCanonicalName(stored: string, a: TransformerAdapter): string | null {
  let name = stored.startsWith(a.modelPrefix) ? stored.slice(a.modelPrefix.length) : stored;
  if (name.startsWith(a.layerPrefix) && /^\d/.test(name.slice(a.layerPrefix.length))) name = `layers.${name.slice(a.layerPrefix.length)}`;
  return a.buffers.test(name) ? null : name;
}

/** Is this canonical weight stored transposed ([in,out], GPT-2 Conv1D)? */
export function isConv1dWeight(name: string, a: TransformerAdapter): boolean {
  const m = /^layers\.\d+\.(.*)\.weight$/.exec(name);
  return m !== null && a.conv1d.includes(m[1]);
}
