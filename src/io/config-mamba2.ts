/**
 * Mamba-2 configs: HF Mamba2ForCausalLM (`model_type: "mamba2"`), transformers 4.x and 5.x dialects
 * (5.x writes the infinite upper dt limit as {"__float__": "Infinity"}, 4.x as a bare Infinity, which
 * readJsonFile accepts). Defaults are transformers' own. And the original state-spaces/mamba2-* dialect
 * (mamba_ssm's MambaConfig with `ssm_cfg: {"layer": "Mamba2", …}`), with the Mamba2 block's defaults.
 */
import { ConfigFields, show } from './config-fields';
import { checkPureMamba, paddedVocab } from './config-mamba';
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
  return f.raw('time_step_limit') === undefined ? [0, Infinity] : dtLimitOf(f, 'time_step_limit');
}

function dtLimitOf(f: ConfigFields, key: string): [number, number] {
  const raw = f.raw(key);
  const num = (v: unknown) => (typeof v === 'number' ? v : v && typeof v === 'object' && (v as { __float__?: unknown }).__float__ === 'Infinity' ? Infinity : NaN);
  const lim = Array.isArray(raw) && raw.length === 2 ? raw.map(num) : [];
  if (lim.length !== 2 || lim.some(Number.isNaN) || !(lim[0] >= 0 && lim[0] < lim[1])) {
    f.fail(key, `must be [min, max] with 0 <= min < max, got ${show(raw)}`);
  }
  return [lim[0], lim[1]];
}

/**
 * Original state-spaces config: MambaConfig (d_model, n_layer, vocab padded to pad_vocab_size_multiple,
 * tie_embeddings) and mamba_ssm's Mamba2 block defaults (d_state 128, d_conv 4, expand 2, headdim 64,
 * ngroups 1, chunk_size 256, dt_limit (0, ∞), no in/out bias, conv bias). Variants whose numbers our
 * graph (which computes what transformers' Mamba2 does) does not reproduce are refused by field.
 */
export function parseOriginalMamba2(f: ConfigFields): Mamba2Config {
  checkPureMamba(f);
  const ssm = f.object('ssm_cfg')!;
  const dModel = f.positiveInt('d_model');
  const dInner = Math.floor(ssm.positiveNumber('expand', 2) * dModel);
  const headDim = ssm.positiveInt('headdim', 64);
  if (dInner % headDim !== 0) ssm.fail('headdim', `(${headDim}) must divide expand × d_model (${dInner})`);
  // mamba_ssm's gated RMSNorm normalises each group of d_inner / ngroups channels; transformers' (and ours) all of them.
  if (ssm.positiveInt('ngroups', 1) !== 1) ssm.fail('ngroups', 'must be 1: with more groups mamba_ssm normalises the gated norm per group, which this graph does not');
  for (const [key, why] of [['D_has_hdim', 'a per-channel D'], ['norm_before_gate', 'the norm before the gate']] as const) {
    if (ssm.bool(key, false)) ssm.fail(key, `is true (${why}); not supported`);
  }
  if (!ssm.bool('rmsnorm', true)) ssm.fail('rmsnorm', 'is false (no gated norm); not supported');
  if (ssm.raw('d_ssm') !== undefined && ssm.raw('d_ssm') !== null) ssm.fail('d_ssm', 'is set (a gated MLP beside the SSM); not supported');
  const eps = f.positiveNumber('norm_epsilon', 1e-5);
  if (eps !== 1e-5) f.fail('norm_epsilon', `(${eps}) must be 1e-5, the epsilon mamba_ssm's gated norm always uses`);
  return {
    arch: 'mamba2',
    vocabSize: paddedVocab(f),
    dModel,
    nLayer: f.positiveInt('n_layer'),
    dInner,
    nHeads: dInner / headDim,
    headDim,
    nGroups: 1,
    dState: ssm.positiveInt('d_state', 128),
    convKernel: ssm.positiveInt('d_conv', 4),
    chunkSize: ssm.positiveInt('chunk_size', 256),
    dtLimit: ssm.has('dt_limit') ? dtLimitOf(ssm, 'dt_limit') : [0, Infinity],
    eps,
    useBias: ssm.bool('bias', false),
    useConvBias: ssm.bool('conv_bias', true),
    tieEmbeddings: f.bool('tie_embeddings', true),
    // These checkpoints use the GPT-NeoX-20B tokenizer: <|endoftext|> = 0.
    eosTokenId: 0,
    padTokenId: 0,
  };
}
