/**
 * GPT-NeoX / Pythia configs from transformers 4.x (rotary_pct,
 * rotary_emb_base) and 5.x (rope_parameters {partial_rotary_factor, rope_theta}).
 */
import { ConfigFields, show } from './config-fields';
import { NeoxConfig } from './config-types';

export function parseNeox(f: ConfigFields): NeoxConfig {
  const dModel = f.positiveInt('hidden_size');
  const nHead = f.positiveInt('num_attention_heads');
  if (dModel % nHead !== 0) {
    f.fail('num_attention_heads', `(${nHead}) must divide hidden_size (${dModel})`);
  }
  const headDim = dModel / nHead;
  const act = f.string('hidden_act', 'gelu');
  if (act !== 'gelu') f.fail('hidden_act', `must be "gelu" (exact erf GELU, as Pythia uses), got ${show(act)}`);
  if (!f.bool('attention_bias', true)) f.fail('attention_bias', 'is false; only GPT-NeoX with attention biases (Pythia) is supported');
  const { pct, pctField, base } = rotarySettings(f);
  // HF: rotary_ndims = int(head_size * rotary_pct); the same double product, floored.
  const rotaryDims = Math.floor(headDim * pct);
  if (rotaryDims < 2 || rotaryDims % 2 !== 0) {
    f.fail(pctField, `(${pct}) gives ${rotaryDims} rotary dims of a ${headDim}-dim head; rotate-half needs an even number >= 2`);
  }
  return {
    arch: 'gpt_neox',
    vocabSize: f.positiveInt('vocab_size'),
    dModel,
    nLayer: f.positiveInt('num_hidden_layers'),
    nHead,
    headDim,
    dFF: f.positiveInt('intermediate_size'),
    rotaryDims,
    rotaryBase: base,
    eps: f.positiveNumber('layer_norm_eps', 1e-5),
    parallelResidual: f.bool('use_parallel_residual', true),
    maxPositions: f.positiveInt('max_position_embeddings', 2048),
    tieEmbeddings: f.bool('tie_word_embeddings', false),
    eosTokenId: f.tokenId('eos_token_id', 2) ?? 2,
    padTokenId: f.tokenId('pad_token_id', null),
  };
}

/**
 * The rotary fraction and base may sit in up to three places depending on the
 * transformers version that wrote the file; where several are present they must agree.
 */
function rotarySettings(f: ConfigFields): { pct: number; pctField: string; base: number } {
  const rope = f.object('rope_parameters');
  if (rope !== undefined) {
    const type = rope.string('rope_type', 'default');
    if (type !== 'default') rope.fail('rope_type', `is ${show(type)}; only plain ("default") rotary embedding is supported`);
  }
  if (f.raw('rope_scaling') !== undefined && f.raw('rope_scaling') !== null) {
    f.fail('rope_scaling', `is ${show(f.raw('rope_scaling'))}; scaled rotary embedding is not supported`);
  }
  const pctSources: [ConfigFields | undefined, string][] = [
    [rope, 'partial_rotary_factor'],
    [f, 'rotary_pct'],
    [f, 'partial_rotary_factor'],
  ];
  const baseSources: [ConfigFields | undefined, string][] = [
    [rope, 'rope_theta'],
    [f, 'rotary_emb_base'],
    [f, 'rope_theta'],
  ];
  const pct = agreeing(f, pctSources, 0.25);
  if (pct.value > 1) f.fail(pct.field, `must be in (0, 1], got ${pct.value}`);
  const base = agreeing(f, baseSources, 10000);
  return { pct: pct.value, pctField: pct.field, base: base.value };
}

/** The first of several places a number may sit (per transformers version); where several are present they must agree. */
export function agreeing(f: ConfigFields, sources: [ConfigFields | undefined, string][], fallback: number): { value: number; field: string } {
  let found: { value: number; field: string } | undefined;
  for (const [obj, key] of sources) {
    if (obj === undefined || !obj.has(key)) continue;
    const value = obj.positiveNumber(key);
    const field = obj === f ? key : `rope_parameters.${key}`;
    if (found === undefined) found = { value, field };
    else if (found.value !== value) f.fail(key, `(${value}) disagrees with "${found.field}" (${found.value})`);
  }
  return found ?? { value: fallback, field: sources[1][1] };
}
