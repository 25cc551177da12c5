import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint, openCheckpoint } from '../../src/io/checkpoint';
import { SafetensorsFile, WritableTensor, writeSafetensors } from '../../src/io/safetensors';

const root = path.resolve(__dirname, '..', '..');
const TINY_MAMBA = path.join(root, 'test/fixtures/tiny-mamba');
const TINY_NEOX = path.join(root, 'test/fixtures/tiny-neox');
const MAMBA_FACTS = path.join(root, 'data/models/mamba-facts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-checkpoint-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Tensors = Record<string, WritableTensor>;

/** Every tensor of a safetensors file, by stored name, as float32 (dtype kept). */
function loadAll(file: string): Tensors {
  const f = SafetensorsFile.open(file);
  const out: Tensors = {};
  for (const n of f.names) {
    const i = f.info(n);
    out[n] = { dtype: i.dtype as WritableTensor['dtype'], shape: i.shape, data: f.readFloat32(n) };
  }
  f.close();
  return out;
}

function configOf(dir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
}

let counter = 0;
/** A checkpoint directory with config.json and (unless null) model.safetensors. */
function makeDir(config: unknown, tensors: Tensors | null, dtype?: WritableTensor['dtype']): string {
  const dir = path.join(tmp, `ckpt-${counter++}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  if (tensors !== null) {
    const converted: Tensors = {};
    for (const [n, t] of Object.entries(tensors)) converted[n] = { ...t, dtype: dtype ?? t.dtype };
    writeSafetensors(path.join(dir, 'model.safetensors'), converted, { format: 'pt' });
  }
  return dir;
}

function without(t: Tensors, ...names: string[]): Tensors {
  const out = { ...t };
  for (const n of names) delete out[n];
  return out;
}

function validateError(dir: string): string {
  const c = openCheckpoint(dir);
  try {
    c.validate();
    return '';
  } catch (e) {
    return (e as Error).message;
  } finally {
    c.close();
  }
}

function expectSameWeights(a: Checkpoint, b: Checkpoint): void {
  expect(b.tensorNames().sort()).toEqual(a.tensorNames().sort());
  for (const n of a.tensorNames()) {
    const x = a.readFloat32(n);
    const y = b.readFloat32(n);
    if (!x.every((v, i) => Object.is(v, y[i]))) throw new Error(`tensor ${n} differs`);
  }
}

const mambaTensors = loadAll(path.join(TINY_MAMBA, 'model.safetensors'));
const neoxTensors = loadAll(path.join(TINY_NEOX, 'model.safetensors'));

describe('openCheckpoint on the bundled checkpoints', () => {
  it('tiny-mamba: canonical names, locations, values', () => {
    const c = openCheckpoint(TINY_MAMBA);
    c.validate();
    expect(c.config.arch).toBe('mamba');
    expect(c.tensorNames()).toHaveLength(42);
    expect(c.tensorNames()).toContain('layers.3.mixer.x_proj.weight');
    expect(c.info('layers.0.mixer.A_log')).toMatchObject({
      dtype: 'F32', shape: [128, 16], storedName: 'backbone.layers.0.mixer.A_log', file: path.join(TINY_MAMBA, 'model.safetensors'),
    });
    expect(Array.from(c.readFloat32('layers.2.mixer.D'))).toEqual(Array.from(mambaTensors['backbone.layers.2.mixer.D'].data));
    expect(c.outputEmbeddingName()).toBe('embeddings.weight');
    expect(c.notes).toEqual([]);
    expect(() => c.readFloat32('layers.9.mixer.D')).toThrow(`${TINY_MAMBA}: no weight named "layers.9.mixer.D"`);
    c.close();
  });

  it('tiny-neox: untied output matrix', () => {
    const c = openCheckpoint(TINY_NEOX);
    c.validate();
    expect(c.outputEmbeddingName()).toBe('embed_out.weight');
    expect(c.info('layers.1.attention.query_key_value.weight').shape).toEqual([192, 64]);
    expect(Array.from(c.readFloat32('embed_out.weight').subarray(0, 5))).toEqual(Array.from(neoxTensors['embed_out.weight'].data.subarray(0, 5)));
    c.close();
  });

  it('both demo models (float16) validate', () => {
    for (const name of ['mamba-facts', 'neox-facts']) {
      const c = openCheckpoint(path.join(root, 'data/models', name));
      c.validate();
      expect(c.info(c.tensorNames()[0]).dtype).toBe('F16');
      c.close();
    }
  });
});

describe('dtypes: a half-precision checkpoint reads the same as its float32 conversion', () => {
  it('mamba-facts F16 == its F32 copy, and re-encoding to F16 reproduces the original bytes', () => {
    const original = loadAll(path.join(MAMBA_FACTS, 'model.safetensors'));
    const f32 = makeDir(configOf(MAMBA_FACTS), original, 'F32');
    const f16 = makeDir(configOf(MAMBA_FACTS), original, 'F16');
    const a = openCheckpoint(MAMBA_FACTS);
    const b = openCheckpoint(f32);
    expect(b.info('embeddings.weight').dtype).toBe('F32');
    expectSameWeights(a, b);
    const c = openCheckpoint(f16);
    for (const n of a.tensorNames()) {
      const ia = a.info(n);
      const ic = c.info(n);
      const bytes = (file: string, off: number): Buffer => {
        const fd = fs.openSync(file, 'r');
        const buf = Buffer.alloc(ia.byteLength);
        fs.readSync(fd, buf, 0, ia.byteLength, off);
        fs.closeSync(fd);
        return buf;
      };
      if (!bytes(ia.file, ia.byteOffset).equals(bytes(ic.file, ic.byteOffset))) throw new Error(`${n}: F16 bytes differ`);
    }
    [a, b, c].forEach((x) => x.close());
  });

  it('tiny-neox as BF16: values are the F32 ones rounded to 8 mantissa bits, and equal its F32 conversion', () => {
    const bf = openCheckpoint(makeDir(configOf(TINY_NEOX), neoxTensors, 'BF16'));
    bf.validate();
    const qkv = bf.readFloat32('layers.0.attention.query_key_value.weight');
    const ref = neoxTensors['gpt_neox.layers.0.attention.query_key_value.weight'].data;
    const bits = new Uint32Array(qkv.buffer);
    for (let i = 0; i < qkv.length; i++) {
      expect(bits[i] & 0xffff).toBe(0);
      expect(Math.abs(qkv[i] - ref[i])).toBeLessThanOrEqual(Math.abs(ref[i]) * 2 ** -8);
    }
    const back: Tensors = {};
    for (const n of bf.tensorNames()) back[`gpt_neox.${n}`] = { dtype: 'F32', shape: bf.info(n).shape, data: bf.readFloat32(n) };
    back['embed_out.weight'] = back['gpt_neox.embed_out.weight'];
    delete back['gpt_neox.embed_out.weight'];
    const f32 = openCheckpoint(makeDir(configOf(TINY_NEOX), back));
    expectSameWeights(bf, f32);
    bf.close();
    f32.close();
  });
});

describe('sharded checkpoints', () => {
  /** tiny-mamba split into two shards plus model.safetensors.index.json. */
  function sharded(edit?: (index: { weight_map: Record<string, string> }, dir: string) => void): string {
    const dir = makeDir(configOf(TINY_MAMBA), null);
    const names = Object.keys(mambaTensors);
    const parts = [names.slice(0, 20), names.slice(20)];
    const index = { metadata: { total_size: 0 }, weight_map: {} as Record<string, string> };
    parts.forEach((part, k) => {
      const file = `model-0000${k + 1}-of-00002.safetensors`;
      const t: Tensors = {};
      for (const n of part) {
        t[n] = mambaTensors[n];
        index.weight_map[n] = file;
      }
      writeSafetensors(path.join(dir, file), t);
    });
    edit?.(index, dir);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    return dir;
  }

  it('loads identically to the single file', () => {
    const dir = sharded();
    const a = openCheckpoint(TINY_MAMBA);
    const b = openCheckpoint(dir);
    b.validate();
    expectSameWeights(a, b);
    const files = new Set(b.tensorNames().map((n) => path.basename(b.info(n).file)));
    expect([...files].sort()).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    a.close();
    b.close();
  });

  it('names a missing shard', () => {
    const dir = sharded((_, d) => fs.unlinkSync(path.join(d, 'model-00002-of-00002.safetensors')));
    expect(() => openCheckpoint(dir)).toThrow(/model\.safetensors\.index\.json: shard "model-00002-of-00002\.safetensors" is listed but .* does not exist/);
  });

  it('names a tensor missing from its shard', () => {
    const dir = sharded((index) => {
      index.weight_map['backbone.norm_f.weight'] = 'model-00001-of-00002.safetensors';
    });
    expect(() => openCheckpoint(dir)).toThrow(/index\.json: tensor "backbone\.norm_f\.weight" is listed in shard "model-00001-of-00002\.safetensors" but .* does not contain it/);
  });

  it('rejects a malformed index and shard paths outside the directory', () => {
    const bad = sharded((index) => {
      (index as { weight_map: unknown }).weight_map = ['x'];
    });
    expect(() => openCheckpoint(bad)).toThrow(/index\.json: "weight_map" must be an object/);
    const escape = sharded((index) => {
      index.weight_map['backbone.norm_f.weight'] = '../model.safetensors';
    });
    expect(() => openCheckpoint(escape)).toThrow(/tensor "backbone\.norm_f\.weight" maps to "\.\.\/model\.safetensors", not a file name/);
  });
});

describe('naming dialects, tying and vocab padding', () => {
  it('original state-spaces layout: backbone.embedding.weight and a padded vocab', () => {
    const t = without(mambaTensors, 'backbone.embeddings.weight');
    t['backbone.embedding.weight'] = mambaTensors['backbone.embeddings.weight'];
    const cfg = { d_model: 64, n_layer: 4, vocab_size: 509, ssm_cfg: { dt_rank: 4 }, rms_norm: true, pad_vocab_size_multiple: 8 };
    const c = openCheckpoint(makeDir(cfg, t));
    c.validate();
    expect(c.config.vocabSize).toBe(512);
    expect(c.info('embeddings.weight').storedName).toBe('backbone.embedding.weight');
    expect(Array.from(c.readFloat32('embeddings.weight'))).toEqual(Array.from(mambaTensors['backbone.embeddings.weight'].data));
    c.close();
  });

  it('an HF config whose vocab_size is the unpadded one adopts the embedding rows', () => {
    const c = openCheckpoint(makeDir({ ...configOf(TINY_MAMBA), vocab_size: 510 }, mambaTensors));
    c.validate();
    expect(c.config.vocabSize).toBe(512);
    expect(c.notes[0]).toMatch(/config vocab_size 510 is padded to 512, the row count of "backbone\.embeddings\.weight"/);
    c.close();
  });

  it('any other vocab mismatch is an error naming tensor, file and both shapes', () => {
    const dir = makeDir({ ...configOf(TINY_MAMBA), vocab_size: 300 }, mambaTensors);
    expect(validateError(dir)).toMatch(
      /"embeddings\.weight" \(stored as "backbone\.embeddings\.weight" in .*ckpt-\d+\/model\.safetensors\): shape \[512, 64\], expected \[300, 64\]/,
    );
  });

  it('a tied Mamba may also store lm_head.weight, but with the right shape', () => {
    const ok = openCheckpoint(makeDir(configOf(TINY_MAMBA), { ...mambaTensors, 'lm_head.weight': mambaTensors['backbone.embeddings.weight'] }));
    ok.validate();
    expect(ok.outputEmbeddingName()).toBe('embeddings.weight');
    ok.close();
    const bad = makeDir(configOf(TINY_MAMBA), { ...mambaTensors, 'lm_head.weight': { dtype: 'F32', shape: [64, 64], data: new Float32Array(64 * 64) } });
    expect(validateError(bad)).toMatch(/"lm_head\.weight" \(stored as "lm_head\.weight" in .*\): shape \[64, 64\], expected \[512, 64\]/);
  });

  it('an untied Mamba must have lm_head.weight', () => {
    const dir = makeDir({ ...configOf(TINY_MAMBA), tie_word_embeddings: false }, mambaTensors);
    expect(validateError(dir)).toMatch(/missing weight "lm_head\.weight" \[512, 64\]/);
  });

  it('old GPT-NeoX buffers are ignored', () => {
    const scalar: WritableTensor = { dtype: 'F32', shape: [], data: new Float32Array([-1e9]) };
    const t: Tensors = {
      ...neoxTensors,
      'gpt_neox.layers.0.attention.bias': { dtype: 'F32', shape: [1, 1, 4, 4], data: new Float32Array(16) },
      'gpt_neox.layers.0.attention.masked_bias': scalar,
      'gpt_neox.layers.0.attention.rotary_emb.inv_freq': { dtype: 'F32', shape: [2], data: new Float32Array([1, 0.01]) },
    };
    const c = openCheckpoint(makeDir(configOf(TINY_NEOX), t));
    c.validate();
    expect(c.ignoredTensors.sort()).toEqual(['gpt_neox.layers.0.attention.bias', 'gpt_neox.layers.0.attention.masked_bias', 'gpt_neox.layers.0.attention.rotary_emb.inv_freq']);
    expect(c.has('layers.0.attention.bias')).toBe(false);
    c.close();
  });
});

describe('checkpoint errors', () => {
  it('missing directory, missing config.json', () => {
    const absent = path.join(tmp, 'absent');
    expect(() => openCheckpoint(absent)).toThrow(`${absent}: checkpoint directory not found`);
    const dir = makeDir({}, null);
    fs.unlinkSync(path.join(dir, 'config.json'));
    expect(() => openCheckpoint(dir)).toThrow(`${dir}: no config.json in this checkpoint directory`);
  });

  it('a bad config.json is reported with its path', () => {
    const dir = makeDir({ ...configOf(TINY_NEOX), num_attention_heads: 3 }, neoxTensors);
    expect(() => openCheckpoint(dir)).toThrow(`${path.join(dir, 'config.json')}: config field "num_attention_heads" (3) must divide hidden_size (64)`);
  });

  it('pickle-only weights: refuse, and explain how to convert', () => {
    const dir = makeDir({ d_model: 64, n_layer: 4, vocab_size: 512 }, null);
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'not read');
    let msg = '';
    try {
      openCheckpoint(dir);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(new RegExp(`^${dir}: only PyTorch pickle weights here \\(pytorch_model\\.bin\\)\\. This library never unpickles`));
    expect(msg).toContain("save_pretrained('");
    expect(msg).toContain('safe_serialization=True');
    expect(msg).toContain('from safetensors.torch import save_file');
    expect(msg).toContain(`torch.load('${path.join(dir, 'pytorch_model.bin')}', map_location='cpu', weights_only=True)`);
    expect(msg).toContain('backbone.embedding.weight');
  });

  it('no weights at all, or safetensors under another name', () => {
    const empty = makeDir(configOf(TINY_MAMBA), null);
    expect(() => openCheckpoint(empty)).toThrow(`${empty}: no weights (model.safetensors or model.safetensors.index.json)`);
    fs.copyFileSync(path.join(TINY_MAMBA, 'model.safetensors'), path.join(empty, 'weights.safetensors'));
    expect(() => openCheckpoint(empty)).toThrow(`${empty}: found weights.safetensors but neither model.safetensors nor`);
  });

  it('a corrupt model.safetensors is reported with its path', () => {
    const dir = makeDir(configOf(TINY_MAMBA), null);
    const file = path.join(dir, 'model.safetensors');
    fs.writeFileSync(file, fs.readFileSync(path.join(TINY_MAMBA, 'model.safetensors')).subarray(0, 5000));
    expect(() => openCheckpoint(dir)).toThrow(new RegExp(`^${file}: tensor ".*": data ends at byte \\d+ but the file has only 5000 bytes`));
  });

  it('missing, misshapen and unexpected weights are listed together', () => {
    const t = without(mambaTensors, 'backbone.layers.2.mixer.D');
    t['backbone.layers.1.mixer.A_log'] = { dtype: 'F32', shape: [16, 128], data: mambaTensors['backbone.layers.1.mixer.A_log'].data };
    t['backbone.layers.0.mixer.extra'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
    const dir = makeDir(configOf(TINY_MAMBA), t);
    const msg = validateError(dir);
    expect(msg).toMatch(new RegExp(`^${dir}: weights do not match config.json \\(mamba, 4 layers, d_model 64, vocab 512\\):`));
    expect(msg).toContain('- missing weight "layers.2.mixer.D" [128]');
    expect(msg).toContain(`- "layers.1.mixer.A_log" (stored as "backbone.layers.1.mixer.A_log" in ${path.join(dir, 'model.safetensors')}): shape [16, 128], expected [128, 16]`);
    expect(msg).toContain(`- unexpected tensor "backbone.layers.0.mixer.extra" in ${path.join(dir, 'model.safetensors')}`);
  });

  it('two stored names for one weight', () => {
    const dir = makeDir(configOf(TINY_MAMBA), { ...mambaTensors, 'backbone.embedding.weight': mambaTensors['backbone.embeddings.weight'] });
    expect(() => openCheckpoint(dir)).toThrow(/"backbone\.embeddings\.weight" \(.*\) and "backbone\.embedding\.weight" \(model\.safetensors\) are both weight "embeddings\.weight"/);
  });

  it('loadTokenizer without tokenizer.json points at the GPT-NeoX-20B tokenizer', () => {
    const c = openCheckpoint(TINY_MAMBA);
    expect(c.hasTokenizer()).toBe(false);
    expect(() => c.loadTokenizer()).toThrow(`${TINY_MAMBA}: no tokenizer.json here; real Mamba and Pythia checkpoints use the GPT-NeoX-20B tokenizer`);
    c.close();
  });
});
