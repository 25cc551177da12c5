/**
 * Mamba (v1) configs in their two dialects: HF MambaForCausalLM
 * (`model_type: "mamba"`) and the original state-spaces/mamba-* config.json
 * read by mamba_ssm's MambaLMHeadModel (d_model, n_layer, ssm_cfg, ...);
 * and Falcon-Mamba (`model_type: "falcon_mamba"`), the same block plus
 * weightless RMS norms inside the mixer, so the same graph with one flag.
 */
import { ConfigFields, show } from './config-fields';
import { MambaConfig } from './config-types';

/** HF MambaConfig; defaults are transformers' own. */
export function parseHfMamba(f: ConfigFields): MambaConfig {
  const dModel = f.positiveInt('hidden_size');
  const act = f.string('hidden_act', 'silu');
  if (act !== 'silu') f.fail('hidden_act', `must be "silu" (the only activation Mamba uses), got ${show(act)}`);
  const expand = f.positiveNumber('expand', 2);
  return {
    arch: 'mamba',
    vocabSize: f.positiveInt('vocab_size'),
    dModel,
    nLayer: f.positiveInt('num_hidden_layers'),
    dInner: f.positiveInt('intermediate_size', Math.floor(expand * dModel)),
    dState: f.positiveInt('state_size', 16),
    dtRank: dtRank(f, 'time_step_rank', dModel),
    convKernel: f.positiveInt('conv_kernel', 4),
    eps: f.positiveNumber('layer_norm_epsilon', 1e-5),
    useBias: f.bool('use_bias', false),
    useConvBias: f.bool('use_conv_bias', true),
    tieEmbeddings: f.bool('tie_word_embeddings', true),
    eosTokenId: f.tokenId('eos_token_id', 0) ?? 0,
    padTokenId: f.tokenId('pad_token_id', 0),
  };
}

/**
 * HF FalconMambaConfig: MambaConfig's fields plus `mixer_rms_eps` (transformers' default 1e-6), the
 * epsilon of FalconMambaMixer's weightless norms of Δ-rank input, B and C.
 */
export function parseHfFalconMamba(f: ConfigFields): MambaConfig {
  return { ...parseHfMamba(f), mixerRmsEps: f.positiveNumber('mixer_rms_eps', 1e-6) };
}

/**
 * Original state-spaces config (mamba_ssm MambaConfig dataclass + Mamba
 * block defaults). The vocab is padded the way MambaLMHeadModel pads it, so
 * 50277 with pad_vocab_size_multiple 8 becomes 50280, the embedding's rows.
 */
export function parseOriginalMamba(f: ConfigFields): MambaConfig {
  const dModel = f.positiveInt('d_model');
  const ssm = f.object('ssm_cfg') ?? new ConfigFields(f.file, {}, 'ssm_cfg.');
  const layer = ssm.string('layer', 'Mamba1');
  if (layer !== 'Mamba1') ssm.fail('layer', `is ${show(layer)}; supported: Mamba1, Mamba2`);
  checkPureMamba(f);
  const expand = ssm.positiveNumber('expand', 2);
  return {
    arch: 'mamba',
    vocabSize: paddedVocab(f),
    dModel,
    nLayer: f.positiveInt('n_layer'),
    dInner: Math.floor(expand * dModel),
    dState: ssm.positiveInt('d_state', 16),
    dtRank: dtRank(ssm, 'dt_rank', dModel),
    convKernel: ssm.positiveInt('d_conv', 4),
    eps: f.positiveNumber('norm_epsilon', 1e-5),
    useBias: ssm.bool('bias', false),
    useConvBias: ssm.bool('conv_bias', true),
    tieEmbeddings: f.bool('tie_embeddings', true),
    // These checkpoints use the GPT-NeoX-20B tokenizer: <|endoftext|> = 0, and the paper pads with it.
    eosTokenId: 0,
    padTokenId: 0,
  };
}

/** The embedding's rows: vocab_size rounded up to pad_vocab_size_multiple, as MambaLMHeadModel pads it. */
export function paddedVocab(f: ConfigFields): number {
  const multiple = f.positiveInt('pad_vocab_size_multiple', 8);
  return Math.ceil(f.positiveInt('vocab_size') / multiple) * multiple;
}

/** mamba_ssm's MambaConfig fields that would add blocks our graphs lack: LayerNorm blocks, MLPs, attention layers. */
export function checkPureMamba(f: ConfigFields): void {
  if (!f.bool('rms_norm', true)) f.fail('rms_norm', 'is false (LayerNorm blocks); only RMSNorm Mamba checkpoints are supported');
  if (f.nonNegativeInt('d_intermediate', 0) !== 0) f.fail('d_intermediate', 'is non-zero (MLP layers between mixers); not supported');
  const attn = f.raw('attn_layer_idx');
  if (attn !== undefined && !(Array.isArray(attn) && attn.length === 0)) {
    f.fail('attn_layer_idx', `lists attention layers (a hybrid model), got ${show(attn)}; only pure Mamba is supported`);
  }
}

/** "auto" means ceil(d_model / 16) in both dialects. */
function dtRank(f: ConfigFields, key: string, dModel: number): number {
  if (f.raw(key) === 'auto' || !f.has(key)) return Math.ceil(dModel / 16);
  if (typeof f.raw(key) === 'string') f.fail(key, `must be "auto" or a positive integer, got ${show(f.raw(key))}`);
  return f.positiveInt(key);
}
