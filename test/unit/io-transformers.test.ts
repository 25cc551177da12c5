/**
 * Loading the adapter-table transformers: config dialects of transformers 4.x and 5.x, what each
 * family's table implies (biases, tied heads, GQA), one-line errors naming the field, BF16 and
 * sharded checkpoints (GPT-2's Conv1D weights transposed on read), known buffers ignored, and packed mode
 * (GPT-2's Conv1D read as stored and transposed in the graph).
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig, TransformerConfig } from '../../src/io/config';
import { openCheckpoint } from '../../src/io/checkpoint';
import { SafetensorsFile, WritableTensor, writeSafetensors } from '../../src/io/safetensors';
import { writeShardedSafetensors } from '../../src/io/safetensors-write';
import { Model } from '../../src/runtime/model';
import { maxDiff } from '../support/max-diff';

const FIX = path.join(__dirname, '..', 'fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-transformers-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const configOf = (name: string) => JSON.parse(fs.readFileSync(path.join(FIX, name, 'config.json'), 'utf8'));
const errorOf = (json: unknown) => {
  try {
    parseConfig(json, 'm/config.json');
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

describe('transformer configs', () => {
  it('Llama in the 4.x dialect (rope_theta, rope_scaling null) and the 5.x one (rope_parameters) parse alike', () => {
    const v5 = configOf('tiny-llama');
    const { rope_parameters: _rope, ...rest } = v5;
    const v4 = { ...rest, rope_theta: 500000.0, rope_scaling: null };
    expect(parseConfig(v4, 'c.json')).toEqual(parseConfig(v5, 'c.json'));
    expect(parseConfig(v5, 'c.json')).toMatchObject({ arch: 'llama', nHead: 4, nKvHeads: 2, headDim: 16, rotaryDims: 16, rotaryBase: 500000, qkvBias: false, tieEmbeddings: false, norm: 'rmsnorm' });
  });

  it('each family table: Qwen2 has q/k/v biases but no output bias; GPT-2 is tied with d_ff 4·D; Qwen3 reads head_dim', () => {
    expect(parseConfig(configOf('tiny-qwen2'), 'c.json')).toMatchObject({ qkvBias: true, outBias: false, mlpBias: false, tieEmbeddings: true, rotaryBase: 1e6 });
    expect(parseConfig(configOf('tiny-gpt2'), 'c.json')).toMatchObject({ arch: 'gpt2', dFF: 256, tieEmbeddings: true, positions: 'learned', qkvBias: true, norm: 'layernorm' });
    expect(parseConfig(configOf('tiny-qwen3'), 'c.json')).toMatchObject({ headDim: 32, qkNorm: true, nKvHeads: 2 });
  });

  it('scaled rotary reads alike from the 4.x dialect (rope_theta + rope_scaling) and 5.x (rope_parameters)', () => {
    for (const name of ['tiny-llama31', 'tiny-llama-yarn']) {
      const v5 = configOf(name);
      const { rope_parameters: { rope_theta, ...scaling }, ...rest } = v5;
      expect(parseConfig({ ...rest, rope_theta, rope_scaling: scaling }, 'c.json'), name).toEqual(parseConfig(v5, 'c.json'));
    }
    expect((parseConfig(configOf('tiny-llama31'), 'c.json') as TransformerConfig).ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 });
    // yarn's defaults as transformers fills them: beta 32 / 1, truncation, attention factor 0.1·ln(factor) + 1.
    expect((parseConfig(configOf('tiny-llama-yarn'), 'c.json') as TransformerConfig).ropeScaling).toEqual({ type: 'yarn', factor: 4, originalMaxPositions: 32, attentionFactor: 0.1 * Math.log(4) + 1, betaFast: 32, betaSlow: 1, truncate: true });
  });

  it('sliding windows: Qwen2 without layer_types windows the layers from max_window_layers on; off without use_sliding_window; Mistral windows all', () => {
    const qwen = configOf('tiny-qwen2-window');
    const { layer_types: _types, ...noTypes } = qwen;
    expect(parseConfig(noTypes, 'c.json')).toEqual(parseConfig(qwen, 'c.json'));
    expect(parseConfig(qwen, 'c.json')).toMatchObject({ slidingWindow: 5, slidingLayers: [2, 3] });
    expect(parseConfig({ ...noTypes, max_window_layers: 1 }, 'c.json')).toMatchObject({ slidingLayers: [1, 2, 3] });
    expect((parseConfig({ ...qwen, use_sliding_window: false }, 'c.json') as TransformerConfig).slidingWindow).toBeUndefined();
    expect(parseConfig(configOf('tiny-mistral-window'), 'c.json')).toMatchObject({ slidingWindow: 4, slidingLayers: [0, 1, 2, 3] });
    expect((parseConfig(configOf('tiny-mistral'), 'c.json') as TransformerConfig).slidingWindow).toBeUndefined(); // sliding_window: null
  });

  const llama = configOf('tiny-llama');
  const cases: [string, unknown, RegExp][] = [
    ['kv heads not dividing heads', { ...llama, num_key_value_heads: 3 }, /^m\/config\.json: config field "num_key_value_heads" \(3\) must divide num_attention_heads \(4\)$/],
    ['llama3 rotary without its factors', { ...llama, rope_parameters: { rope_type: 'llama3', rope_theta: 5e5 } }, /^m\/config\.json: missing required config field "rope_parameters\.factor"$/],
    ['a rotary type we do not compute', { ...llama, rope_parameters: { rope_type: 'longrope', rope_theta: 5e5 } }, /config field "rope_parameters\.rope_type" is string "longrope"; supported rotary types: default, linear, dynamic, llama3, yarn$/],
    ['rope_parameters and rope_scaling of two types', { ...llama, rope_parameters: { rope_type: 'linear', rope_theta: 5e5, factor: 2 }, rope_scaling: { type: 'dynamic', factor: 2 } }, /config field "rope_scaling\.type" \(string "dynamic"\) disagrees with rope_parameters\.rope_type \(string "linear"\)$/],
    ['partial rotary in the Llama family', { ...llama, partial_rotary_factor: 0.5 }, /config field "partial_rotary_factor" must be 1: transformers' Llama, Mistral and Qwen2\/3 attention rotates the whole head/],
    ['Qwen2 layer_types of the wrong length', { ...configOf('tiny-qwen2-window'), layer_types: ['full_attention'] }, /config field "layer_types" must list one type per layer \(4\)/],
    ['Qwen2 layer_types with an unknown type', { ...configOf('tiny-qwen2-window'), layer_types: ['full_attention', 'chunked_attention', 'full_attention', 'full_attention'] }, /config field "layer_types" \[1\] is string "chunked_attention"/],
    ['Llama with use_sliding_window', { ...llama, use_sliding_window: true }, /config field "use_sliding_window" is true; Llama has no sliding-window attention/],
    ['θ in two places that disagree', { ...llama, rope_theta: 10000 }, /config field "rope_theta" \(10000\) disagrees with "rope_parameters\.rope_theta" \(500000\)/],
    ['not SiLU', { ...llama, hidden_act: 'gelu' }, /config field "hidden_act" must be "silu"/],
    ['GPT-2 with another activation', { ...configOf('tiny-gpt2'), activation_function: 'relu' }, /config field "activation_function" must be "gelu_new"/],
    ['GPT-2 layer-scaled attention', { ...configOf('tiny-gpt2'), scale_attn_by_inverse_layer_idx: true }, /config field "scale_attn_by_inverse_layer_idx" is true; not supported/],
  ];
  for (const [label, json, message] of cases) it(label, () => expect(errorOf(json)).toMatch(message));
});

/** Every tensor of a checkpoint's model.safetensors, by stored name, as float32. */
function tensorsOf(name: string): Record<string, WritableTensor> {
  const f = SafetensorsFile.open(path.join(FIX, name, 'model.safetensors'));
  const out: Record<string, WritableTensor> = {};
  for (const n of f.names) out[n] = { dtype: 'F32', shape: f.info(n).shape, data: f.readFloat32(n) };
  f.close();
  return out;
}

let counter = 0;
function dirWith(name: string, write: (dir: string) => void): string {
  const dir = path.join(tmp, `${name}-${counter++}`);
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(FIX, name, 'config.json'), path.join(dir, 'config.json'));
  write(dir);
  return dir;
}

describe('transformer checkpoints', () => {
  it('GPT-2 as BF16 in two shards: Conv1D weights are read transposed to [out,in], and it runs as its F32 widening does', async () => {
    const tensors = tensorsOf('tiny-gpt2');
    const names = Object.keys(tensors);
    const bf16 = (part: string[]) => Object.fromEntries(part.map((n) => [n, { ...tensors[n], dtype: 'BF16' as const }]));
    const dir = dirWith('tiny-gpt2', (d) => writeShardedSafetensors(d, [bf16(names.slice(0, 10)), bf16(names.slice(10))]));
    const ckpt = openCheckpoint(dir);
    ckpt.validate();
    const stored = SafetensorsFile.open(ckpt.info('layers.1.attn.c_attn.weight').file);
    const raw = stored.readFloat32('transformer.h.1.attn.c_attn.weight'); // [in=64, out=192], BF16 widened
    stored.close();
    const w = ckpt.readFloat32('layers.1.attn.c_attn.weight'); // [192,64]
    for (const [o, i] of [[0, 0], [5, 63], [191, 17], [100, 3]]) expect(w[o * 64 + i]).toBe(raw[i * 192 + o]);
    // The same values written as F32 (one file) give bit-identical logits: dtype and sharding change nothing else.
    const widened: Record<string, WritableTensor> = {};
    for (const n of ckpt.tensorNames()) {
      const info = ckpt.info(n);
      const f = SafetensorsFile.open(info.file);
      widened[info.storedName] = { dtype: 'F32', shape: info.shape, data: f.readFloat32(info.storedName) };
      f.close();
    }
    ckpt.close();
    const f32 = dirWith('tiny-gpt2', (d) => writeSafetensors(path.join(d, 'model.safetensors'), widened, { format: 'pt' }));
    const ids = [[3, 17, 250, 9, 41]];
    const a = await (await Model.load(dir)).logits(ids);
    const b = await (await Model.load(f32)).logits(ids);
    expect(maxDiff(a.data, b.data)).toBe(0);
    // and BF16 rounding really changed the weights (the test would pass vacuously on F32 input otherwise)
    const orig = await (await Model.load(path.join(FIX, 'tiny-gpt2'))).logits(ids);
    expect(maxDiff(a.data, orig.data)).toBeGreaterThan(1e-4);
  });

  it('GPT-2 attention buffers (attn.bias, attn.masked_bias) are ignored; a stray tensor is named', () => {
    const tensors = tensorsOf('tiny-gpt2');
    const withBuffers = { ...tensors, 'transformer.h.0.attn.bias': { dtype: 'F32' as const, shape: [1, 1, 4, 4], data: new Float32Array(16) }, 'transformer.h.0.attn.masked_bias': { dtype: 'F32' as const, shape: [], data: new Float32Array(1) } };
    const ok = openCheckpoint(dirWith('tiny-gpt2', (d) => writeSafetensors(path.join(d, 'model.safetensors'), withBuffers)));
    ok.validate();
    expect(ok.ignoredTensors.sort()).toEqual(['transformer.h.0.attn.bias', 'transformer.h.0.attn.masked_bias']);
    ok.close();
    const stray = { ...tensors, 'transformer.h.0.attn.q_proj.weight': { dtype: 'F32' as const, shape: [2], data: new Float32Array(2) } };
    const bad = openCheckpoint(dirWith('tiny-gpt2', (d) => writeSafetensors(path.join(d, 'model.safetensors'), stray)));
    expect(() => bad.validate()).toThrow(/unexpected tensor "transformer\.h\.0\.attn\.q_proj\.weight"/);
    bad.close();
  });

  it('a GPT-2 Conv1D weight stored in Linear layout is reported with both shapes', () => {
    const tensors = tensorsOf('tiny-gpt2');
    const t = tensors['transformer.h.2.mlp.c_fc.weight']; // [64,256] Conv1D
    tensors['transformer.h.2.mlp.c_fc.weight'] = { ...t, shape: [256, 64] };
    const ckpt = openCheckpoint(dirWith('tiny-gpt2', (d) => writeSafetensors(path.join(d, 'model.safetensors'), tensors)));
    expect(() => ckpt.validate()).toThrow(/"layers\.2\.mlp\.c_fc\.weight" \(stored as "transformer\.h\.2\.mlp\.c_fc\.weight".*shape \[256, 64\], expected \[64, 256\]/);
    ckpt.close();
  });

  it('packed mode: Llama, tied Qwen2, GPT-2 (Conv1D [in,out] read as stored) and a sliding-window Qwen2 give the default logits', async () => {
    const rows = [[3, 17, 250, 9, 41, 100, 7], [88, 2, 7]];
    for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-gpt2', 'tiny-qwen2-window']) {
      const plain = await Model.load(path.join(FIX, name));
      const packed = await Model.load(path.join(FIX, name), { packed: true });
      const [p, d] = [(await packed.logits(rows)).data, (await plain.logits(rows)).data];
      expect(maxDiff(p, d), name).toBeLessThan(1e-4);
      // No float32 weight reached JS, so these logits came from the packed graphs, which read the file.
      expect(packed.residentWeightBytes).toBe(0);
      expect(packed.packedWeights).not.toBeNull();
      await packed.releasePacked();
    }
  });
});
