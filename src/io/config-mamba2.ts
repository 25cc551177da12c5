/**
 * Mamba-2 configs: HF Mamba2ForCausalLM (`model_type: "mamba2"`), transformers 4.x and 5.x dialects
 * (5.x writes the infinite upper dt limit as {"__float__": "Infinity"}, 4.x as a bare Infinity, which
 * readJsonFile accepts). Defaults are transformers' own.
 */
import { ConfigFields, show } from './config-fields';
import { Mamba2Config } from './config-types';

export function parseHfMamba2(f: ConfigFields): Mamba2Config {
  const dModel = f.positiveInt('hidden_size');
  const act = f.string('hidden_act', 'silu');
  if (act !== 'silu') f.fail('hidden_act', `must be "silu" (the only activation Mamba-2 uses), got ${show(act)}`);
  const nHeads = f.positiveInt('num_heads', 128);
  const headDim = f.positiveInt('head_dim', 64);
  const dInner = Math.floor(f.positiveNumber('expand', 2) * dModel);
  if (nHeads * headDim !== dInner) f.fail('num_heads', `× head_dim (${nHeads} × ${headDim}) must equal expand × hidden_size (${dInner})`);
  const nGroups = f.positiveInt('n_groups', 8);
  if (nHeads % nGroups !== 0) f.fail('n_groups', `(${nGroups}) must divide num_heads (${nHeads})`);
  return {
    arch: 'mamba2',
    vocabSize: f.positiveInt('vocab_size'),
    dModel,
    nLayer: f.positiveInt('num_hidden_layers'),
    dInner,
    nHeads,
    headDim,
    nGroups,
    dState: f.positiveInt('state_size', 128),
    convKernel: f.positiveInt('conv_kernel', 4),
    chunkSize: f.positiveInt('chunk_size', 256),
    dtLimit: dtLimit(f),
    eps: f.positiveNumber('layer_norm_epsilon', 1e-5),
    useBias: f.bool('use_bias', false),
    useConvBias: f.bool('use_conv_bias', true),
    tieEmbeddings: f.bool('tie_word_embeddings', false),
    eosTokenId: f.tokenId('eos_token_id', 2) ?? 2,
    padTokenId: f.tokenId('pad_token_id', 1),
  };
}

/** `time_step_limit` [min, max], default (0, ∞): dt is clamped to it after softplus. */
function dtLimit(f: ConfigFields): [number, number] {
  const raw = f.raw('time_step_limit');
  if (raw === undefined) return [0, Infinity];
  const num = (v: unknown) => (typeof v === 'number' ? v : v && typeof v === 'object' && (v as { __float__?: unknown }).__float__ === 'Infinity' ? Infinity : NaN);
  const lim = Array.isArray(raw) && raw.length === 2 ? raw.map(num) : [];
  if (lim.length !== 2 || lim.some(Number.isNaN) || !(lim[0] >= 0 && lim[0] < lim[1])) {
    f.fail('time_step_limit', `must be [min, max] with 0 <= min < max, got ${show(raw)}`);
  }
  return [lim[0], lim[1]];
}
