/**
 * End to end: Model.load on corrupted copies of a real checkpoint, and bad
 * inputs to a loaded model. Each is a FactlensError whose message names the
 * file, tensor or field at fault; nothing crashes or hangs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { FactlensError } from '../../src/errors';
import { SafetensorsFile, writeSafetensors, WritableTensor } from '../../src/io';

const FIX = path.join(__dirname, '..', 'fixtures', 'tiny-mamba');
let tmp: string;

/** A copy of tiny-mamba under tmp/name, then `edit` applied to it. */
function corrupted(name: string, edit: (dir: string) => void): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(FIX)) if (f !== 'reference.json') fs.copyFileSync(path.join(FIX, f), path.join(dir, f));
  edit(dir);
  return dir;
}

/** Rewrite model.safetensors with `change` applied to its {name: tensor} map. */
function rewriteWeights(dir: string, change: (t: Record<string, WritableTensor>) => void): void {
  const file = path.join(dir, 'model.safetensors');
  const st = SafetensorsFile.open(file);
  const tensors: Record<string, WritableTensor> = {};
  for (const n of st.names) tensors[n] = { dtype: 'F32', shape: st.info(n).shape, data: st.readFloat32(n) };
  st.close();
  change(tensors);
  writeSafetensors(file, tensors);
}

function editConfig(dir: string, change: (c: Record<string, unknown>) => void): void {
  const p = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(p, 'utf8'));
  change(c);
  fs.writeFileSync(p, JSON.stringify(c));
}

/** Model.load(dir) rejects with a FactlensError whose message matches every pattern. */
async function loadFails(dir: string, ...patterns: RegExp[]): Promise<string> {
  let err: unknown;
  try {
    await Model.load(dir);
  } catch (e) {
    err = e;
  }
  expect(err, `${dir} loaded`).toBeInstanceOf(FactlensError);
  const msg = (err as Error).message;
  for (const p of patterns) expect(msg).toMatch(p);
  return msg;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-load-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Model.load on corrupted checkpoints', () => {
  it('the pristine copy loads (the corruptions below are the only difference)', async () => {
    const m = await Model.load(corrupted('ok', () => {}));
    expect(m.nLayers).toBe(4);
  });

  it('missing config.json', async () => {
    const dir = corrupted('noconfig', (d) => fs.rmSync(path.join(d, 'config.json')));
    await loadFails(dir, /config\.json/, new RegExp(dir.replace(/[/.]/g, '\\$&')));
  });

  it('unknown model_type', async () => {
    const dir = corrupted('bert', (d) => editConfig(d, (c) => (c.model_type = 'bert')));
    await loadFails(dir, /model_type/, /bert/, /config\.json/);
  });

  it('a missing config key', async () => {
    const dir = corrupted('nolayers', (d) => editConfig(d, (c) => delete c.num_hidden_layers));
    await loadFails(dir, /num_hidden_layers|n_layer/, /config\.json/);
  });

  it('weight shape mismatch', async () => {
    const dir = corrupted('shape', (d) => rewriteWeights(d, (t) => {
      const w = t['backbone.layers.1.mixer.out_proj.weight'];
      t['backbone.layers.1.mixer.out_proj.weight'] = { dtype: 'F32', shape: [64, 64], data: w.data.subarray(0, 64 * 64) };
    }));
    await loadFails(dir, /layers\.1\.mixer\.out_proj\.weight/, /\[64, 64\]/, /\[64, 128\]/, /model\.safetensors/);
  });

  it('config and weights disagree (d_state in config.json vs A_log)', async () => {
    const dir = corrupted('dstate', (d) => editConfig(d, (c) => (c.state_size = 8)));
    await loadFails(dir, /A_log/, /\[128, 16\]/, /\[128, 8\]/);
  });

  it('missing tensor', async () => {
    const dir = corrupted('missing', (d) => rewriteWeights(d, (t) => delete t['backbone.layers.2.mixer.D']));
    await loadFails(dir, /missing weight "layers\.2\.mixer\.D"/);
  });

  it('truncated safetensors', async () => {
    const dir = corrupted('truncated', (d) => {
      const p = path.join(d, 'model.safetensors');
      fs.truncateSync(p, Math.floor(fs.statSync(p).size / 2));
    });
    await loadFails(dir, /model\.safetensors/, new RegExp(path.basename(dir)), /ends at byte \d+ but the file has only \d+ bytes/);
  });

  it('a header that is cut off or not JSON', async () => {
    const cut = corrupted('cutheader', (d) => fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.from([0x10, 0, 0, 0, 0, 0, 0, 0, 0x7b])));
    await loadFails(cut, /model\.safetensors/);
    const garbage = corrupted('garbage', (d) => fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.from('\x08\0\0\0\0\0\0\0nonsense')));
    await loadFails(garbage, /model\.safetensors/);
  });

  it('pytorch_model.bin only: refused, never unpickled, with conversion instructions', async () => {
    const dir = corrupted('pickle', (d) => {
      fs.rmSync(path.join(d, 'model.safetensors'));
      fs.writeFileSync(path.join(d, 'pytorch_model.bin'), Buffer.from('PK\x03\x04 not really a pickle'));
    });
    const msg = await loadFails(dir, /pytorch_model\.bin/, /never unpickles/, /safetensors/, /save_pretrained/);
    expect(msg.split('\n')[0]).toMatch(/pytorch_model\.bin/); // the first line says what is wrong
  });

  it('a nonexistent directory', async () => {
    await loadFails(path.join(tmp, 'nope'), /nope/, /not found/);
  });
});

describe('bad inputs to a loaded model', () => {
  let model: Model;
  let demo: Model;
  beforeAll(async () => {
    model = await Model.load(FIX);
    demo = await Model.load(path.join(__dirname, '..', '..', 'data', 'models', 'mamba-facts'));
  });

  it('token id out of range names the id, row and position', async () => {
    await expect(model.logits([[0, 1e9]])).rejects.toThrow(FactlensError);
    await expect(model.logits([[0, 1e9]])).rejects.toThrow(/token id 1000000000 at row 0, position 1 is out of range.*0\.\.511/);
    await expect(model.logits([[3, 4], [5, -1]])).rejects.toThrow(/token id -1 at row 1, position 1/);
    await expect(model.logits([[3, 1.5]])).rejects.toThrow(/token id 1\.5/);
  });

  it('empty prompts', async () => {
    await expect(demo.logits('')).rejects.toThrow(FactlensError);
    await expect(demo.logits('')).rejects.toThrow(/row 0 is empty/);
    await expect(model.logits([[1, 2], []])).rejects.toThrow(/row 1 is empty/);
    await expect(model.logits([] as number[][])).rejects.toThrow(/row 0 is empty|empty batch/); // [] reads as one empty prompt
  });

  it('text on a model without a tokenizer', async () => {
    await expect(model.logits('hello')).rejects.toThrow(/no tokenizer\.json/);
  });

  it('unknown hook name, with suggestions', async () => {
    const run = () => model.runWithCache([[1, 2, 3]], ['layers.0.mixer.ssm_outt']);
    await expect(run()).rejects.toThrow(FactlensError);
    await expect(run()).rejects.toThrow(/unknown hook "layers\.0\.mixer\.ssm_outt" for mamba\. Did you mean: "layers\.0\.mixer\.ssm_out"/);
    await expect(model.runWithHooks([[1, 2]], [['layers.1.attn.q', () => {}]])).rejects.toThrow(/unknown hook "layers\.1\.attn\.q"/);
    await expect(model.runWithCache([[1, 2]], ['layers.4.resid_post'])).rejects.toThrow(/layer 4 is out of range.*0\.\.3/);
    const res = await model.runWithCache([[1, 2]], ['layers.0.norm']);
    expect(() => res.cache.get('layers.0.mixer.x')).toThrow(/"layers\.0\.mixer\.x" was not cached.*layers\.0\.norm/);
  });

  it('a hook that returns the wrong shape', async () => {
    const bad = model.runWithHooks([[1, 2, 3]], [['layers.1.mixer.out', (t) => t.at(0)]]);
    await expect(bad).rejects.toThrow(/hook "layers\.1\.mixer\.out" returned shape \[3,64\], expected \[1,3,64\]|returned shape/);
  });
});
