/**
 * Configs of the transformers described by adapter tables: GPT-2 (`gpt2`) and the Llama family
 * (`llama`, `mistral`, `qwen2`, `qwen3`), in the dialects of transformers 4.x (rope_theta,
 * rope_scaling) and 5.x (rope_parameters {rope_type, rope_theta}); rotary settings in config-rope.ts.
 */
import { ConfigFields, show } from './config-fields';
import { ropeSettings } from './config-rope';
import { TransformerArch, TransformerConfig } from './config-types';

export function parseGpt2(f: ConfigFields): TransformerConfig {
  const dModel = f.positiveInt('n_embd');
  const nHead = f.positiveInt('n_head');
  if (dModel % nHead !== 0) f.fail('n_head', `(${nHead}) must divide n_embd (${dModel})`);
  const act = f.string('activation_function', 'gelu_new');
  if (act !== 'gelu_new') f.fail('activation_function', `must be "gelu_new" (tanh GELU, as GPT-2 uses), got ${show(act)}`);
  // Variants of GPT-2 attention that change its numbers; none of the released checkpoints use them.
  if (!f.bool('scale_attn_weights', true)) f.fail('scale_attn_weights', 'is false; only 1/sqrt(head_dim) scaled attention is supported');
  for (const key of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn', 'add_cross_attention']) {
    if (f.bool(key, false)) f.fail(key, 'is true; not supported');
  }
  const nInner = f.raw('n_inner');
  return {
    arch: 'gpt2',
    vocabSize: f.positiveInt('vocab_size'),
    dModel,
    nLayer: f.positiveInt('n_layer'),
    nHead,
    nKvHeads: nHead,
    headDim: dModel / nHead,
    dFF: nInner === null || nInner === undefined ? 4 * dModel : f.positiveInt('n_inner'),
    norm: 'layernorm',
    eps: f.positiveNumber('layer_norm_epsilon', 1e-5),
    mlp: 'gelu_new',
    positions: 'learned',
    rotaryDims: 0,
    rotaryBase: 0,
    maxPositions: f.positiveInt('n_positions', 1024),
    qkvBias: true,
    outBias: true,
    mlpBias: true,
    qkNorm: false,
    tieEmbeddings: f.bool('tie_word_embeddings', true),
    eosTokenId: f.tokenId('eos_token_id', 50256) ?? 50256,
    padTokenId: f.tokenId('pad_token_id', null),
  };
}

/** Llama, Mistral, Qwen2 and Qwen3 differ only in these data (transformers' defaults per model type). */
const LLAMA_FAMILY: Record<Exclude<TransformerArch, 'gpt2'>, { qkvBias: boolean | 'attention_bias'; qkNorm: boolean; eps: number; tie: boolean; base: number }> = {
  llama: { qkvBias: 'attention_bias', qkNorm: false, eps: 1e-6, tie: false, base: 10000 },
  mistral: { qkvBias: false, qkNorm: false, eps: 1e-6, tie: false, base: 10000 },
  qwen2: { qkvBias: true, qkNorm: false, eps: 1e-6, tie: false, base: 10000 },
  qwen3: { qkvBias: 'attention_bias', qkNorm: true, eps: 1e-6, tie: false, base: 10000 },
};

export function parseLlamaFamily(f: ConfigFields, arch: Exclude<TransformerArch, 'gpt2'>): TransformerConfig {
  const fam = LLAMA_FAMILY[arch];
  const dModel = f.positiveInt('hidden_size');
  const nHead = f.positiveInt('num_attention_heads');
  const nKvHeads = f.positiveInt('num_key_value_heads', nHead);
  if (nHead % nKvHeads !== 0) f.fail('num_key_value_heads', `(${nKvHeads}) must divide num_attention_heads (${nHead})`);
  if (!f.has('head_dim') && dModel % nHead !== 0) f.fail('num_attention_heads', `(${nHead}) must divide hidden_size (${dModel})`);
  const headDim = f.positiveInt('head_dim', dModel / nHead);
  if (headDim % 2 !== 0) f.fail('head_dim', `(${headDim}) must be even for rotate-half rotary embedding`);
  const act = f.string('hidden_act', 'silu');
  if (act !== 'silu') f.fail('hidden_act', `must be "silu" (SiLU-gated MLP), got ${show(act)}`);
  const attnBias = fam.qkvBias === 'attention_bias' ? f.bool('attention_bias', false) : fam.qkvBias;
  const maxPositions = f.positiveInt('max_position_embeddings', 2048);
  const nLayer = f.positiveInt('num_hidden_layers');
  const rope = ropeSettings(f, fam.base, maxPositions);
  return {
    arch,
    vocabSize: f.positiveInt('vocab_size'),
    dModel,
    nLayer,
    nHead,
    nKvHeads,
    headDim,
    dFF: f.positiveInt('intermediate_size'),
    norm: 'rmsnorm',
    eps: f.positiveNumber('rms_norm_eps', fam.eps),
    mlp: 'silu_gated',
    positions: 'rotary',
    rotaryDims: headDim,
    rotaryBase: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    ...slidingWindow(f, arch, nLayer),
    maxPositions,
    qkvBias: attnBias,
    outBias: arch === 'qwen2' ? false : attnBias,
    mlpBias: f.bool('mlp_bias', false),
    qkNorm: fam.qkNorm,
    tieEmbeddings: f.bool('tie_word_embeddings', fam.tie),
    eosTokenId: f.tokenId('eos_token_id', 2) ?? 2,
    padTokenId: f.tokenId('pad_token_id', null),
  };
}

/**
 * Sliding-window attention as transformers reads it: Mistral windows every layer when `sliding_window`
 * is set; Qwen2/Qwen3 only with `use_sliding_window`, in the layers `layer_types` marks
 * "sliding_attention" (by default those from `max_window_layers` on); Llama has none.
 */
function slidingWindow(f: ConfigFields, arch: Exclude<TransformerArch, 'gpt2'>, nLayer: number): { slidingWindow?: number; slidingLayers?: number[] } {
  const set = f.raw('sliding_window') !== null && f.raw('sliding_window') !== undefined;
  if (arch === 'llama' || arch === 'mistral') {
    if (f.bool('use_sliding_window', false) && arch === 'llama') f.fail('use_sliding_window', 'is true; Llama has no sliding-window attention');
    if (arch === 'llama' || !set) return {};
    return { slidingWindow: f.positiveInt('sliding_window'), slidingLayers: Array.from({ length: nLayer }, (_, l) => l) };
  }
  if (!f.bool('use_sliding_window', false) || !set) return {};
  const window = f.positiveInt('sliding_window');
  const types = f.raw('layer_types');
  if (types === undefined || types === null) {
    const from = f.nonNegativeInt('max_window_layers', 28);
    return { slidingWindow: window, slidingLayers: Array.from({ length: nLayer }, (_, l) => l).filter((l) => l >= from) };
  }
  if (!Array.isArray(types) || types.length !== nLayer) f.fail('layer_types', `must list one type per layer (${nLayer}), got ${show(types)}`);
  const bad = types.findIndex((t) => t !== 'full_attention' && t !== 'sliding_attention');
  if (bad >= 0) f.fail('layer_types', `[${bad}] is ${show(types[bad])}; expected "full_attention" or "sliding_attention"`);
  return { slidingWindow: window, slidingLayers: types.flatMap((t, l) => (t === 'sliding_attention' ? [l] : [])) };
}
