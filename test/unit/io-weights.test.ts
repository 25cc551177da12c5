import path from 'path';
import { describe, expect, it } from 'vitest';
import { parseConfig, readConfigFile } from '../../src/io/config';
import { SafetensorsFile } from '../../src/io/safetensors';
import { canonicalName, expectedWeights } from '../../src/io/weights';

const root = path.resolve(__dirname, '..', '..');

describe('expectedWeights', () => {
  it('Mamba-2.8b shapes as the paper lists them (tied: no lm_head)', () => {
    const cfg = parseConfig({ d_model: 2560, n_layer: 64, vocab_size: 50277, ssm_cfg: {}, pad_vocab_size_multiple: 8 }, 'c.json');
    const w = expectedWeights(cfg);
    expect(w.size).toBe(1 + 64 * 10 + 1);
    expect(w.get('embeddings.weight')).toEqual([50280, 2560]);
    expect(w.get('layers.63.mixer.in_proj.weight')).toEqual([10240, 2560]);
    expect(w.get('layers.0.mixer.conv1d.weight')).toEqual([5120, 1, 4]);
    expect(w.get('layers.0.mixer.conv1d.bias')).toEqual([5120]);
    expect(w.get('layers.0.mixer.x_proj.weight')).toEqual([192, 5120]);
    expect(w.get('layers.0.mixer.dt_proj.weight')).toEqual([5120, 160]);
    expect(w.get('layers.0.mixer.A_log')).toEqual([5120, 16]);
    expect(w.get('layers.0.mixer.out_proj.weight')).toEqual([2560, 5120]);
    expect(w.get('norm_f.weight')).toEqual([2560]);
    expect(w.has('lm_head.weight')).toBe(false);
    expect(w.has('layers.0.mixer.in_proj.bias')).toBe(false);
  });

  it('Mamba with biases, no conv bias, untied head', () => {
    const cfg = parseConfig({ model_type: 'mamba', vocab_size: 16, hidden_size: 8, num_hidden_layers: 1, use_bias: true, use_conv_bias: false, tie_word_embeddings: false }, 'c.json');
    expect([...expectedWeights(cfg).entries()]).toEqual([
      ['embeddings.weight', [16, 8]],
      ['layers.0.norm.weight', [8]],
      ['layers.0.mixer.in_proj.weight', [32, 8]],
      ['layers.0.mixer.in_proj.bias', [32]],
      ['layers.0.mixer.conv1d.weight', [16, 1, 4]],
      ['layers.0.mixer.x_proj.weight', [1 + 32, 16]],
      ['layers.0.mixer.dt_proj.weight', [16, 1]],
      ['layers.0.mixer.dt_proj.bias', [16]],
      ['layers.0.mixer.A_log', [16, 16]],
      ['layers.0.mixer.D', [16]],
      ['layers.0.mixer.out_proj.weight', [8, 16]],
      ['layers.0.mixer.out_proj.bias', [8]],
      ['norm_f.weight', [8]],
      ['lm_head.weight', [16, 8]],
    ]);
  });

  it('Pythia-2.8b shapes', () => {
    const cfg = parseConfig({ model_type: 'gpt_neox', vocab_size: 50304, hidden_size: 2560, num_hidden_layers: 32, num_attention_heads: 32, intermediate_size: 10240 }, 'c.json');
    const w = expectedWeights(cfg);
    expect(w.size).toBe(1 + 32 * 12 + 2 + 1);
    expect(w.get('embed_in.weight')).toEqual([50304, 2560]);
    expect(w.get('layers.5.attention.query_key_value.weight')).toEqual([7680, 2560]);
    expect(w.get('layers.5.attention.query_key_value.bias')).toEqual([7680]);
    expect(w.get('layers.5.attention.dense.weight')).toEqual([2560, 2560]);
    expect(w.get('layers.5.mlp.dense_h_to_4h.weight')).toEqual([10240, 2560]);
    expect(w.get('layers.5.mlp.dense_4h_to_h.weight')).toEqual([2560, 10240]);
    expect(w.get('final_layer_norm.bias')).toEqual([2560]);
    expect(w.get('embed_out.weight')).toEqual([50304, 2560]);
  });

  it('a tied GPT-NeoX expects no embed_out', () => {
    const cfg = parseConfig({ model_type: 'gpt_neox', vocab_size: 8, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, tie_word_embeddings: true }, 'c.json');
    expect(expectedWeights(cfg).has('embed_out.weight')).toBe(false);
  });

  for (const name of ['tiny-mamba', 'tiny-neox']) {
    it(`matches exactly the tensors and shapes transformers saved for ${name}`, () => {
      const dir = path.join(root, 'test/fixtures', name);
      const cfg = readConfigFile(path.join(dir, 'config.json'));
      const f = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
      const inFile = new Map(f.names.map((n) => [canonicalName(n, cfg.arch), f.info(n).shape]));
      f.close();
      expect(new Map([...inFile].sort())).toEqual(new Map([...expectedWeights(cfg)].sort()));
    });
  }
});

describe('canonicalName', () => {
  const cases: [string, 'mamba' | 'gpt_neox', string | null][] = [
    ['backbone.embeddings.weight', 'mamba', 'embeddings.weight'],
    ['backbone.embedding.weight', 'mamba', 'embeddings.weight'], // original state-spaces spelling
    ['backbone.layers.12.mixer.A_log', 'mamba', 'layers.12.mixer.A_log'],
    ['backbone.norm_f.weight', 'mamba', 'norm_f.weight'],
    ['lm_head.weight', 'mamba', 'lm_head.weight'],
    ['gpt_neox.embed_in.weight', 'gpt_neox', 'embed_in.weight'],
    ['gpt_neox.layers.3.attention.query_key_value.bias', 'gpt_neox', 'layers.3.attention.query_key_value.bias'],
    ['embed_out.weight', 'gpt_neox', 'embed_out.weight'],
    ['gpt_neox.layers.0.attention.bias', 'gpt_neox', null],
    ['gpt_neox.layers.31.attention.masked_bias', 'gpt_neox', null],
    ['gpt_neox.layers.7.attention.rotary_emb.inv_freq', 'gpt_neox', null],
    ['gpt_neox.layers.7.attention.dense.bias', 'gpt_neox', 'layers.7.attention.dense.bias'],
    ['something.else', 'gpt_neox', 'something.else'],
  ];
  for (const [file, arch, canonical] of cases) {
    it(`${file} -> ${canonical}`, () => expect(canonicalName(file, arch)).toBe(canonical));
  }
});
