/**
 * The models the bench runs: the two bundled demo models, and random-weight
 * checkpoints with the real shapes of mamba-130m/370m and pythia-160m/410m
 * (config.json exactly as the Hugging Face hub ships them, transformers 4.x
 * dialect), generated on first use into .cache/bench-models (not committed).
 */
import path from 'path';
import type { Arch } from '../src/runtime/hooks';

export const ROOT = path.join(__dirname, '..');
export const CACHE = path.join(ROOT, '.cache');

export interface BenchModel {
  name: string;
  arch: Arch;
  /** A bundled checkpoint directory, or a config.json to generate random weights for. */
  dir?: string;
  config?: Record<string, unknown>;
  /** Run only with --large or when named in --models (11 GB checkpoints, minutes per forward at batch 32). */
  large?: boolean;
}

const mamba = (d: number, layers: number, dtRank: number): Record<string, unknown> => ({
  architectures: ['MambaForCausalLM'],
  model_type: 'mamba',
  hidden_size: d,
  intermediate_size: 2 * d,
  num_hidden_layers: layers,
  vocab_size: 50280,
  state_size: 16,
  expand: 2,
  conv_kernel: 4,
  time_step_rank: dtRank,
  use_bias: false,
  use_conv_bias: true,
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
  residual_in_fp32: true,
  bos_token_id: 0,
  eos_token_id: 0,
  pad_token_id: 0,
  torch_dtype: 'float32',
});

/** state-spaces/mamba2-130m's shapes as transformers' Mamba2Config (the HF conversion, e.g. mamba2-130m-hf). */
const mamba2 = (d: number, layers: number): Record<string, unknown> => ({
  architectures: ['Mamba2ForCausalLM'],
  model_type: 'mamba2',
  hidden_size: d,
  num_hidden_layers: layers,
  vocab_size: 50288,
  state_size: 128,
  expand: 2,
  head_dim: 64,
  num_heads: (2 * d) / 64,
  n_groups: 1,
  conv_kernel: 4,
  chunk_size: 256,
  use_bias: false,
  use_conv_bias: true,
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
  residual_in_fp32: true,
  bos_token_id: 0,
  eos_token_id: 0,
  pad_token_id: 0,
  torch_dtype: 'float32',
});

const pythia = (d: number, layers: number, heads: number): Record<string, unknown> => ({
  architectures: ['GPTNeoXForCausalLM'],
  model_type: 'gpt_neox',
  hidden_size: d,
  num_hidden_layers: layers,
  num_attention_heads: heads,
  intermediate_size: 4 * d,
  hidden_act: 'gelu',
  rotary_pct: 0.25,
  rotary_emb_base: 10000,
  max_position_embeddings: 2048,
  layer_norm_eps: 1e-5,
  use_parallel_residual: true,
  tie_word_embeddings: false,
  vocab_size: 50304,
  bos_token_id: 0,
  eos_token_id: 0,
  torch_dtype: 'float32',
});

/** GPT-2 small (124M), its config.json as the hub ships it. */
const gpt2 = (): Record<string, unknown> => ({
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  activation_function: 'gelu_new',
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  n_positions: 1024,
  n_ctx: 1024,
  n_inner: null,
  layer_norm_epsilon: 1e-5,
  vocab_size: 50257,
  bos_token_id: 50256,
  eos_token_id: 50256,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
});

/**
 * A Llama-shaped ~1B model: TinyLlama-1.1B's shapes (22 layers, d 2048, 32 query / 4 key-value heads,
 * SwiGLU 5632, vocab 32000, untied), plain rotary (Llama 3.2-1B's "llama3" rope scaling is not supported).
 */
const llama1b = (): Record<string, unknown> => ({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 22,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  hidden_act: 'silu',
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: false,
  vocab_size: 32000,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
});

export const MODELS: BenchModel[] = [
  { name: 'mamba-facts', arch: 'mamba', dir: path.join(ROOT, 'data', 'models', 'mamba-facts') },
  { name: 'neox-facts', arch: 'gpt_neox', dir: path.join(ROOT, 'data', 'models', 'neox-facts') },
  { name: 'mamba-130m', arch: 'mamba', config: mamba(768, 24, 48) },
  { name: 'mamba-370m', arch: 'mamba', config: mamba(1024, 48, 64) },
  { name: 'pythia-160m', arch: 'gpt_neox', config: pythia(768, 12, 12) },
  { name: 'mamba2-130m', arch: 'mamba2', config: mamba2(768, 24) },
  { name: 'pythia-410m', arch: 'gpt_neox', config: pythia(1024, 24, 16) },
  { name: 'gpt2', arch: 'gpt2', config: gpt2() },
  { name: 'llama-1.1b', arch: 'llama', config: llama1b(), large: true },
  { name: 'mamba-2.8b', arch: 'mamba', config: mamba(2560, 64, 160), large: true },
  { name: 'pythia-2.8b', arch: 'gpt_neox', config: pythia(2560, 32, 32), large: true },
];

/** transformers + PyTorch CPU on this machine, 2 threads (issue 2), ms per 16-token forward: [batch 1, batch 32]. */
export const ISSUE_TORCH_MS: Record<string, [number, number]> = {
  'mamba-130m': [143, 2600],
  'pythia-160m': [103, 871],
  'mamba-facts': [31, 629],
  'neox-facts': [7.5, 76],
};

export const BATCHES = [1, 32];
export const TOKENS = 16;

/** The same pseudo-random prompts for every engine: B rows of T ids in [2, vocab). */
export function benchIds(B: number, T: number, vocab: number): number[][] {
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8);
  return Array.from({ length: B }, () => Array.from({ length: T }, () => 2 + (next() % Math.min(vocab - 2, 8000))));
}
