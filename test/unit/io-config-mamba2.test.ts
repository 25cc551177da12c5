/**
 * The original state-spaces/mamba2-* config dialect (mamba_ssm's MambaConfig with ssm_cfg {"layer": "Mamba2"}):
 * mamba2-130m's file reads as the transformers config of the same model (Mamba2Config with the block's
 * defaults spelled out), and the variants our graph does not reproduce are refused naming the field.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/io/config';
import { canonicalName } from '../../src/io/weights';

// state-spaces/mamba2-130m/config.json as published (ssm_cfg names only the layer type).
const ORIGINAL_130M = {
  d_model: 768, d_intermediate: 0, n_layer: 24, vocab_size: 50277, ssm_cfg: { layer: 'Mamba2' }, attn_layer_idx: [], attn_cfg: {},
  rms_norm: true, residual_in_fp32: true, fused_add_norm: true, pad_vocab_size_multiple: 16, tie_embeddings: true,
};
// The same model in transformers' spelling, mamba_ssm's Mamba2 defaults written out.
const HF_130M = {
  model_type: 'mamba2', hidden_size: 768, num_hidden_layers: 24, vocab_size: 50288, expand: 2, num_heads: 24, head_dim: 64, n_groups: 1,
  state_size: 128, conv_kernel: 4, chunk_size: 256, layer_norm_epsilon: 1e-5, use_bias: false, use_conv_bias: true, tie_word_embeddings: true,
  eos_token_id: 0, pad_token_id: 0,
};

describe('original Mamba-2 configs', () => {
  it('mamba2-130m reads as its transformers config (vocab padded to 16, 24 heads of 64, one group, tied)', () => {
    expect(parseConfig(ORIGINAL_130M, 'c.json')).toEqual(parseConfig(HF_130M, 'c.json'));
    expect(parseConfig({ ...ORIGINAL_130M, ssm_cfg: { layer: 'Mamba2', d_state: 64, headdim: 32, chunk_size: 128, dt_limit: [0.001, 0.1] } }, 'c.json'))
      .toMatchObject({ dState: 64, headDim: 32, nHeads: 48, chunkSize: 128, dtLimit: [0.001, 0.1] });
    expect(canonicalName('backbone.embedding.weight', 'mamba2')).toBe('embeddings.weight'); // the original spelling
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['more than one group', { layer: 'Mamba2', ngroups: 8 }, /^c\.json: config field "ssm_cfg\.ngroups" must be 1: with more groups mamba_ssm normalises the gated norm per group/],
    ['norm before the gate', { layer: 'Mamba2', norm_before_gate: true }, /config field "ssm_cfg\.norm_before_gate" is true/],
    ['a per-channel D', { layer: 'Mamba2', D_has_hdim: true }, /config field "ssm_cfg\.D_has_hdim" is true/],
    ['a gated MLP beside the SSM', { layer: 'Mamba2', d_ssm: 512 }, /config field "ssm_cfg\.d_ssm" is set/],
    ['headdim not dividing d_inner', { layer: 'Mamba2', headdim: 100 }, /config field "ssm_cfg\.headdim" \(100\) must divide expand × d_model \(1536\)/],
    ['another layer type', { layer: 'Mamba3' }, /config field "ssm_cfg\.layer" is string "Mamba3"; supported: Mamba1, Mamba2/],
  ];
  for (const [label, ssm, message] of cases) it(label, () => expect(() => parseConfig({ ...ORIGINAL_130M, ssm_cfg: ssm }, 'c.json')).toThrow(message));
  it('hybrid attention layers are refused as for Mamba-1', () => {
    expect(() => parseConfig({ ...ORIGINAL_130M, attn_layer_idx: [3] }, 'c.json')).toThrow(/config field "attn_layer_idx" lists attention layers/);
  });
});
