/**
 * The normalised model configuration every other module consumes, whatever
 * dialect (HF transformers 4.x/5.x, original state-spaces) config.json used.
 */
export interface MambaConfig {
  arch: 'mamba';
  vocabSize: number;
  dModel: number;
  nLayer: number;
  /** E: width of the SSM branch (expand * dModel). */
  dInner: number;
  /** N: state size per channel. */
  dState: number;
  /** R: rank of the delta projection. */
  dtRank: number;
  /** K: depthwise causal conv width. */
  convKernel: number;
  eps: number;
  /** Bias on in_proj / out_proj. */
  useBias: boolean;
  useConvBias: boolean;
  tieEmbeddings: boolean;
  eosTokenId: number;
  padTokenId: number | null;
  /**
   * Falcon-Mamba (`model_type: "falcon_mamba"`): the epsilon of the weightless RMS norms applied to
   * the Δ-rank input, B and C inside the mixer, after x_proj (`mixer_rms_eps`). Absent for plain Mamba.
   */
  mixerRmsEps?: number;
}

export interface NeoxConfig {
  arch: 'gpt_neox';
  vocabSize: number;
  dModel: number;
  nLayer: number;
  nHead: number;
  headDim: number;
  dFF: number;
  /** Leading dims of each head that get rotary embedding: int(headDim * rotary_pct). */
  rotaryDims: number;
  rotaryBase: number;
  eps: number;
  parallelResidual: boolean;
  maxPositions: number;
  tieEmbeddings: boolean;
  eosTokenId: number;
  padTokenId: number | null;
}

/** The decoder-only transformers described as data by an adapter table (models/transformer-adapters.ts). */
export type TransformerArch = 'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export interface TransformerConfig {
  arch: TransformerArch;
  vocabSize: number;
  dModel: number;
  nLayer: number;
  nHead: number;
  /** Key/value heads (grouped-query attention when fewer than nHead). */
  nKvHeads: number;
  headDim: number;
  dFF: number;
  norm: 'layernorm' | 'rmsnorm';
  eps: number;
  /** GPT-2: tanh-approximated GELU on one projection; Llama family: SiLU(gate) ⊙ up. */
  mlp: 'gelu_new' | 'silu_gated';
  /** GPT-2: learned absolute positions; Llama family: rotary on the whole head. */
  positions: 'learned' | 'rotary';
  /** Leading dims of each head that get rotary embedding (0 for learned positions). */
  rotaryDims: number;
  rotaryBase: number;
  maxPositions: number;
  /** Bias on the q/k/v projections (GPT-2, Qwen2, Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  outBias: boolean;
  /** Bias on the MLP projections. */
  mlpBias: boolean;
  /** Qwen3: RMSNorm over each head's q and k before rotary. */
  qkNorm: boolean;
  tieEmbeddings: boolean;
  eosTokenId: number;
  padTokenId: number | null;
  /** Scaled rotary (`rope_scaling` / `rope_parameters` types other than "default"); absent: plain rotary. */
  ropeScaling?: RopeScaling;
  /** Sliding-window attention: query t sees keys t−w+1 … t in the layers listed in slidingLayers. */
  slidingWindow?: number;
  slidingLayers?: readonly number[];
}

/** How scaled rotary embeddings change the inverse frequencies (and, for yarn, scale cos and sin). */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  /** Dynamic NTK: plain rotary up to maxPositions (longer runs are refused). */
  | { type: 'dynamic'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'yarn'; factor: number; originalMaxPositions: number; attentionFactor: number; betaFast: number; betaSlow: number; truncate: boolean };

/** Mamba-2 (SSD): scalar A per head, B/C shared by the heads of a group, gated RMSNorm before out_proj. */
export interface Mamba2Config {
  arch: 'mamba2';
  vocabSize: number;
  dModel: number;
  nLayer: number;
  /** E = nHeads · headDim: width of x, z and the gated norm. */
  dInner: number;
  nHeads: number;
  headDim: number;
  /** G: groups of heads sharing B and C; divides nHeads. */
  nGroups: number;
  /** N: state size per channel. */
  dState: number;
  /** K: depthwise causal conv width (over x, B and C together). */
  convKernel: number;
  /** transformers' SSD chunk length; our scan is recurrent, exact for any chunk size, so it is only recorded. */
  chunkSize: number;
  /** dt is clamped to [min, max] after softplus. */
  dtLimit: [number, number];
  eps: number;
  /** Bias on in_proj / out_proj. */
  useBias: boolean;
  useConvBias: boolean;
  tieEmbeddings: boolean;
  eosTokenId: number;
  padTokenId: number | null;
}

export type ModelConfig = MambaConfig | NeoxConfig | Mamba2Config | TransformerConfig;
