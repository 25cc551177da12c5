import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig, readConfigFile } from '../../src/io/config';

const root = path.resolve(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The error message parseConfig throws for json, or '' if it does not throw. */
function errorOf(json: unknown, file = 'models/x/config.json'): string {
  try {
    parseConfig(json, file);
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

// EleutherAI/pythia-160m config.json as transformers 4.x wrote it.
const PYTHIA_160M = {
  architectures: ['GPTNeoXForCausalLM'],
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'gelu',
  hidden_size: 768,
  initializer_range: 0.02,
  intermediate_size: 3072,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  model_type: 'gpt_neox',
  num_attention_heads: 12,
  num_hidden_layers: 12,
  rotary_emb_base: 10000,
  rotary_pct: 0.25,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
  transformers_version: '4.24.0',
  use_cache: true,
  use_parallel_residual: true,
  vocab_size: 50304,
};

// state-spaces/mamba-130m config.json (mamba_ssm's own format; no model_type).
const MAMBA_130M_ORIGINAL = {
  d_model: 768,
  n_layer: 24,
  vocab_size: 50277,
  ssm_cfg: {},
  rms_norm: true,
  residual_in_fp32: true,
  fused_add_norm: true,
  pad_vocab_size_multiple: 8,
};

// state-spaces/mamba-2.8b-hf (transformers MambaConfig).
const MAMBA_28B_HF = {
  architectures: ['MambaForCausalLM'],
  bos_token_id: 0,
  conv_kernel: 4,
  eos_token_id: 0,
  expand: 2,
  hidden_act: 'silu',
  hidden_size: 2560,
  intermediate_size: 5120,
  layer_norm_epsilon: 1e-5,
  model_type: 'mamba',
  num_hidden_layers: 64,
  pad_token_id: 0,
  rescale_prenorm_residual: false,
  residual_in_fp32: true,
  state_size: 16,
  time_step_rank: 160,
  transformers_version: '4.39.0.dev0',
  use_bias: false,
  use_cache: true,
  use_conv_bias: true,
  vocab_size: 50280,
};

describe('configs shipped with the project', () => {
  it('tiny-mamba (transformers 5.x MambaForCausalLM)', () => {
    expect(readConfigFile(path.join(root, 'test/fixtures/tiny-mamba/config.json'))).toEqual({
      arch: 'mamba', vocabSize: 512, dModel: 64, nLayer: 4, dInner: 128, dState: 16, dtRank: 4, convKernel: 4, eps: 1e-5,
      useBias: false, useConvBias: true, tieEmbeddings: true, eosTokenId: 0, padTokenId: 0,
    });
  });

  it('tiny-neox (transformers 5.x rope_parameters)', () => {
    expect(readConfigFile(path.join(root, 'test/fixtures/tiny-neox/config.json'))).toEqual({
      arch: 'gpt_neox', vocabSize: 512, dModel: 64, nLayer: 4, nHead: 4, headDim: 16, dFF: 256, rotaryDims: 4, rotaryBase: 10000,
      eps: 1e-5, parallelResidual: true, maxPositions: 128, tieEmbeddings: false, eosTokenId: 2, padTokenId: null,
    });
  });

  it('the demo models', () => {
    expect(readConfigFile(path.join(root, 'data/models/mamba-facts/config.json'))).toMatchObject({
      arch: 'mamba', vocabSize: 8192, dModel: 256, nLayer: 16, dInner: 512, dtRank: 16, tieEmbeddings: true, padTokenId: 1,
    });
    expect(readConfigFile(path.join(root, 'data/models/neox-facts/config.json'))).toMatchObject({
      arch: 'gpt_neox', vocabSize: 8192, dModel: 256, nLayer: 8, nHead: 8, headDim: 32, dFF: 1024, rotaryDims: 8, maxPositions: 512, eosTokenId: 0,
    });
  });
});

describe('real checkpoint dialects', () => {
  it('Pythia-160m, transformers 4.x (rotary_pct, rotary_emb_base)', () => {
    expect(parseConfig(PYTHIA_160M, 'pythia-160m/config.json')).toEqual({
      arch: 'gpt_neox', vocabSize: 50304, dModel: 768, nLayer: 12, nHead: 12, headDim: 64, dFF: 3072, rotaryDims: 16, rotaryBase: 10000,
      eps: 1e-5, parallelResidual: true, maxPositions: 2048, tieEmbeddings: false, eosTokenId: 0, padTokenId: null,
    });
  });

  it('Pythia-2.8b: 80-dim heads, 20 rotary dims', () => {
    const cfg = parseConfig({ ...PYTHIA_160M, hidden_size: 2560, num_attention_heads: 32, num_hidden_layers: 32, intermediate_size: 10240 }, 'c.json');
    expect(cfg).toMatchObject({ headDim: 80, rotaryDims: 20, nLayer: 32, dFF: 10240 });
  });

  it('transformers 4.4x files that also carry partial_rotary_factor / rope_theta, agreeing', () => {
    const cfg = parseConfig({ ...PYTHIA_160M, partial_rotary_factor: 0.25, rope_theta: 10000 }, 'c.json');
    expect(cfg).toMatchObject({ rotaryDims: 16, rotaryBase: 10000 });
  });

  it('rotary dims follow int(head_size * rotary_pct), float product included', () => {
    // 96 * 0.3 = 28.799999999999997 in doubles; Python int() gives 28.
    const cfg = parseConfig({ ...PYTHIA_160M, hidden_size: 96 * 8, num_attention_heads: 8, rotary_pct: 0.3, use_parallel_residual: false }, 'c.json');
    expect(cfg).toMatchObject({ headDim: 96, rotaryDims: 28, parallelResidual: false });
    const full = parseConfig({ ...PYTHIA_160M, rope_parameters: { rope_type: 'default', partial_rotary_factor: 1.0, rope_theta: 500000 }, rotary_pct: undefined, rotary_emb_base: undefined }, 'c.json');
    expect(full).toMatchObject({ rotaryDims: 64, rotaryBase: 500000 });
  });

  it('state-spaces/mamba-130m original config: derived sizes and vocab padded 50277 -> 50280', () => {
    expect(parseConfig(MAMBA_130M_ORIGINAL, 'mamba-130m/config.json')).toEqual({
      arch: 'mamba', vocabSize: 50280, dModel: 768, nLayer: 24, dInner: 1536, dState: 16, dtRank: 48, convKernel: 4, eps: 1e-5,
      useBias: false, useConvBias: true, tieEmbeddings: true, eosTokenId: 0, padTokenId: 0,
    });
  });

  it('state-spaces/mamba-2.8b original config matches the HF conversion of the same model', () => {
    const original = parseConfig({ ...MAMBA_130M_ORIGINAL, d_model: 2560, n_layer: 64 }, 'mamba-2.8b/config.json');
    const hf = parseConfig(MAMBA_28B_HF, 'mamba-2.8b-hf/config.json');
    expect(original).toEqual(hf);
    expect(hf).toMatchObject({ dInner: 5120, dtRank: 160, vocabSize: 50280 });
  });

  it('original config with an explicit ssm_cfg and a different padding multiple', () => {
    const cfg = parseConfig({ ...MAMBA_130M_ORIGINAL, pad_vocab_size_multiple: 16, ssm_cfg: { d_state: 8, d_conv: 3, expand: 3, dt_rank: 10, bias: true, conv_bias: false } }, 'c.json');
    expect(cfg).toMatchObject({ vocabSize: 50288, dInner: 2304, dState: 8, convKernel: 3, dtRank: 10, useBias: true, useConvBias: false });
  });

  it('HF Mamba: time_step_rank "auto" is ceil(hidden/16), intermediate defaults to expand*hidden, eos list takes its first id', () => {
    const cfg = parseConfig({ model_type: 'mamba', vocab_size: 100, hidden_size: 100, num_hidden_layers: 2, time_step_rank: 'auto', expand: 2, eos_token_id: [5, 6] }, 'c.json');
    expect(cfg).toMatchObject({ dtRank: 7, dInner: 200, dState: 16, convKernel: 4, tieEmbeddings: true, eosTokenId: 5, padTokenId: 0 });
  });
});

describe('config errors name the file and the field', () => {
  const F = 'models/x/config.json';
  const cases: [string, unknown, RegExp][] = [
    ['not an object', [1, 2], /^models\/x\/config\.json: config must be a JSON object, got an array/],
    ['no model_type, not state-spaces', { hidden_size: 64 }, /^models\/x\/config\.json: config has no "model_type"; supported: "mamba".*"gpt_neox".*state-spaces/],
    ['unsupported model_type', { model_type: 'bert' }, /^models\/x\/config\.json: unsupported "model_type" string "bert"; supported: "mamba"/],
    ['unsupported model_type (jamba, a hybrid)', { model_type: 'jamba' }, /unsupported "model_type" string "jamba"/], // mamba2 and llama are supported now (issue #17)
    ['missing hidden_size', { model_type: 'mamba', vocab_size: 8, num_hidden_layers: 1 }, /^models\/x\/config\.json: missing required config field "hidden_size"/],
    ['missing vocab_size (neox)', { ...PYTHIA_160M, vocab_size: undefined }, /missing required config field "vocab_size"/],
    ['missing intermediate_size (neox)', { ...PYTHIA_160M, intermediate_size: undefined }, /missing required config field "intermediate_size"/],
    ['string where an integer belongs', { ...MAMBA_28B_HF, hidden_size: '2560' }, /config field "hidden_size" must be a positive integer, got string "2560"/],
    ['fractional layer count', { ...MAMBA_28B_HF, num_hidden_layers: 1.5 }, /"num_hidden_layers" must be a positive integer, got number 1.5/],
    ['boolean field with a string', { ...MAMBA_28B_HF, use_bias: 'no' }, /"use_bias" must be true or false, got string "no"/],
    ['negative eps', { ...PYTHIA_160M, layer_norm_eps: -1 }, /"layer_norm_eps" must be a positive number, got number -1/],
    ['bad time_step_rank', { ...MAMBA_28B_HF, time_step_rank: 'big' }, /"time_step_rank" must be "auto" or a positive integer, got string "big"/],
    ['heads do not divide hidden', { ...PYTHIA_160M, num_attention_heads: 5 }, /config field "num_attention_heads" \(5\) must divide hidden_size \(768\)/],
    ['non-gelu activation', { ...PYTHIA_160M, hidden_act: 'gelu_new' }, /"hidden_act" must be "gelu".*got string "gelu_new"/],
    ['non-silu mamba activation', { ...MAMBA_28B_HF, hidden_act: 'relu' }, /"hidden_act" must be "silu"/],
    ['scaled rope (5.x)', { ...PYTHIA_160M, rope_parameters: { rope_type: 'linear', factor: 2 } }, /config field "rope_parameters\.rope_type" is string "linear"/],
    ['scaled rope (4.x)', { ...PYTHIA_160M, rope_scaling: { type: 'linear', factor: 2 } }, /config field "rope_scaling" is an object; scaled rotary/],
    ['rotary settings disagree', { ...PYTHIA_160M, rope_parameters: { partial_rotary_factor: 0.5, rope_theta: 10000 } }, /"rotary_pct" \(0.25\) disagrees with "rope_parameters\.partial_rotary_factor" \(0.5\)/],
    ['rotary base disagrees', { ...PYTHIA_160M, rope_theta: 20000 }, /"rope_theta" \(20000\) disagrees with "rotary_emb_base" \(10000\)/],
    ['rotary fraction above 1', { ...PYTHIA_160M, rotary_pct: 1.5 }, /"rotary_pct" must be in \(0, 1\]/],
    ['odd rotary dims', { ...PYTHIA_160M, rotary_pct: 0.5, hidden_size: 12 * 6 }, /"rotary_pct" \(0.5\) gives 3 rotary dims of a 6-dim head/],
    ['no attention bias', { ...PYTHIA_160M, attention_bias: false }, /"attention_bias" is false/],
    ['rope_parameters not an object', { ...PYTHIA_160M, rope_parameters: 3 }, /"rope_parameters" must be an object, got number 3/],
    ['an unknown block in ssm_cfg', { ...MAMBA_130M_ORIGINAL, ssm_cfg: { layer: 'Mamba3' } }, /config field "ssm_cfg\.layer" is string "Mamba3"; supported: Mamba1, Mamba2/],
    ['bad ssm_cfg value', { ...MAMBA_130M_ORIGINAL, ssm_cfg: { d_state: 0 } }, /config field "ssm_cfg\.d_state" must be a positive integer, got number 0/],
    ['LayerNorm original', { ...MAMBA_130M_ORIGINAL, rms_norm: false }, /"rms_norm" is false/],
    ['hybrid original', { ...MAMBA_130M_ORIGINAL, attn_layer_idx: [3] }, /"attn_layer_idx" lists attention layers/],
    ['missing n_layer original', { d_model: 8, vocab_size: 8, n_layer: undefined, model_type: undefined }, /config has no "model_type"/],
    ['bad token id', { ...PYTHIA_160M, eos_token_id: 'eos' }, /"eos_token_id" must be a token id/],
  ];
  for (const [label, json, message] of cases) {
    it(label, () => expect(errorOf(json, F)).toMatch(message));
  }

  it('readConfigFile names a missing or malformed file', () => {
    const missing = path.join(tmp, 'nope.json');
    expect(() => readConfigFile(missing)).toThrow(`${missing}: config file not found`);
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(bad, '{"model_type": "mamba",');
    expect(() => readConfigFile(bad)).toThrow(new RegExp(`^${bad.replace(/[.\\/]/g, '\\$&')}: config file is not valid JSON`));
  });
});
