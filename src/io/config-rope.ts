/**
 * Rotary settings of the Llama family in both config dialects: transformers 4.x (`rope_theta`,
 * `rope_scaling` {type | rope_type, factor, …}) and 5.x (`rope_parameters` {rope_type, rope_theta,
 * factor, …}). Where both are present they must agree. Types read: default, linear, dynamic, llama3,
 * yarn (others, e.g. longrope, are refused by name), with transformers' defaults for missing fields.
 */
import { ConfigFields, show } from './config-fields';
import { agreeing } from './config-neox';
import { RopeScaling } from './config-types';

const SCALED = ['linear', 'dynamic', 'llama3', 'yarn'] as const;

/** The rope type an object declares (`rope_type`, or the 4.x `type`), and the field that says it. */
function ropeType(obj: ConfigFields): { type: string; field: string } {
  const field = obj.has('rope_type') ? 'rope_type' : 'type';
  return { type: obj.string(field, 'default'), field };
}

export function ropeSettings(f: ConfigFields, fallbackTheta: number, maxPositions: number): { theta: number; scaling?: RopeScaling } {
  const params = f.object('rope_parameters');
  const legacy = f.object('rope_scaling');
  for (const obj of [params, legacy, f]) {
    // transformers 5.18's Llama, Mistral and Qwen2/3 ignore the factor for plain rotary (the whole head turns) and fail
    // for scaled types: no reference to match, so refused rather than guessed.
    if (obj?.has('partial_rotary_factor') && obj.positiveNumber('partial_rotary_factor') !== 1) {
      obj.fail('partial_rotary_factor', 'must be 1: transformers\' Llama, Mistral and Qwen2/3 attention rotates the whole head (it ignores or fails on a partial factor)');
    }
  }
  const theta = agreeing(f, [[params, 'rope_theta'], [f, 'rope_theta']], fallbackTheta).value;
  const declared = [params, legacy].filter((o): o is ConfigFields => o !== undefined && ropeType(o).type !== 'default');
  if (declared.length === 0) return { theta };
  const [obj] = declared;
  const { type, field } = ropeType(obj);
  if (declared.length === 2 && ropeType(declared[1]).type !== type) {
    declared[1].fail(ropeType(declared[1]).field, `(${show(ropeType(declared[1]).type)}) disagrees with rope_parameters.rope_type (${show(type)})`);
  }
  if (!(SCALED as readonly string[]).includes(type)) obj.fail(field, `is ${show(type)}; supported rotary types: default, ${SCALED.join(', ')}`);
  const originalMax = () => obj.positiveInt('original_max_position_embeddings', f.positiveInt('original_max_position_embeddings', maxPositions));
  if (type === 'linear' || type === 'dynamic') return { theta, scaling: { type, factor: obj.positiveNumber('factor') } };
  if (type === 'llama3') {
    const scaling: RopeScaling = { type, factor: obj.positiveNumber('factor'), lowFreqFactor: obj.positiveNumber('low_freq_factor'), highFreqFactor: obj.positiveNumber('high_freq_factor'), originalMaxPositions: originalMax() };
    if (scaling.highFreqFactor <= scaling.lowFreqFactor) obj.fail('high_freq_factor', `(${scaling.highFreqFactor}) must exceed low_freq_factor (${scaling.lowFreqFactor})`);
    return { theta, scaling };
  }
  return { theta, scaling: yarn(obj, originalMax(), maxPositions) };
}

/** yarn's fields with transformers' defaults (beta 32/1, truncate, attention factor from the factor and mscales). */
function yarn(obj: ConfigFields, originalMaxPositions: number, maxPositions: number): RopeScaling {
  const factor = obj.raw('factor') === null || !obj.has('factor') ? maxPositions / originalMaxPositions : obj.positiveNumber('factor');
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const m = obj.has('mscale') ? obj.positiveNumber('mscale') : 0;
  const mAll = obj.has('mscale_all_dim') ? obj.positiveNumber('mscale_all_dim') : 0;
  const attentionFactor = obj.has('attention_factor') ? obj.positiveNumber('attention_factor') : m && mAll ? mscale(factor, m) / mscale(factor, mAll) : mscale(factor);
  return {
    type: 'yarn',
    factor,
    originalMaxPositions,
    attentionFactor,
    betaFast: obj.has('beta_fast') ? obj.positiveNumber('beta_fast') : 32,
    betaSlow: obj.has('beta_slow') ? obj.positiveNumber('beta_slow') : 1,
    truncate: obj.bool('truncate', true),
  };
}
