/**
 * Saving edited models as checkpoints (Model.save): the reload's logits are bit-identical to the
 * edited view (float32 checkpoint) or to the view as stored (asStored, F16 checkpoint); every byte
 * outside the edited tensors — header, other tensors, config, tokenizer files — equals the source;
 * the edited tensor is written in its own dtype; bad targets are refused before anything is written.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { rng } from '../../src/runtime/generate';
import { Tensor } from '../../src/runtime/tensor';
import { openCheckpoint } from '../../src/io/checkpoint';
import { SafetensorsFile, writeShardedSafetensors } from '../../src/io/safetensors';

const ROOT = path.join(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-save-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The view with `name` perturbed by seeded noise (a stand-in for any edit). */
function perturbed(model: Model, name: string, scale: number): Model {
  const W = model.weight(name);
  const r = rng(3);
  return model.withWeights(new Map([[name, new Tensor(W.data.map((x) => x + scale * (r() - 0.5)), W.shape)]]));
}

const sameBytes = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * Only `name`'s bytes changed: the source safetensors with that tensor's span replaced by the saved
 * file's equals the saved file, and the other listed files are copies.
 */
function expectOnlyEdited(dir: string, out: string, name: string, files: string[]): void {
  const { byteOffset, byteLength } = openCheckpoint(dir).info(name);
  const a = fs.readFileSync(path.join(dir, 'model.safetensors')), b = fs.readFileSync(path.join(out, 'model.safetensors'));
  expect(a.length).toBe(b.length);
  b.copy(a, byteOffset, byteOffset, byteOffset + byteLength);
  expect(a.equals(b)).toBe(true);
  for (const f of files) expect([f, fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(dir, f)))]).toEqual([f, true]);
}

describe('Model.save', () => {
  it('float32 checkpoint: the reload has bit-identical logits and only the edited span changed', async () => {
    const dir = path.join(ROOT, 'test', 'fixtures', 'tiny-mamba');
    const model = await Model.load(dir);
    const name = 'layers.2.mixer.out_proj.weight';
    const edited = perturbed(model, name, 0.05);
    const out = path.join(tmp, 'tiny-mamba-edited');
    const report = edited.save(out);
    expect(report.edited).toEqual([{ name, storedName: 'backbone.layers.2.mixer.out_proj.weight', file: 'model.safetensors', dtype: 'F32' }]);
    expect(report.copied.sort()).toEqual(fs.readdirSync(dir).sort());
    const ids = [[3, 17, 5, 99, 250, 7, 1]];
    const reloaded = await Model.load(out);
    expect(sameBytes((await reloaded.logits(ids)).data, (await edited.logits(ids)).data)).toBe(true);
    expect(sameBytes((await reloaded.logits(ids)).data, (await model.logits(ids)).data)).toBe(false);
    expectOnlyEdited(dir, out, name, ['config.json', 'generation_config.json', 'reference.json']);
  });

  it('F16 checkpoint: the edit is stored as F16, the reload equals asStored() bit for bit, tokenizer files come along', async () => {
    const dir = path.join(ROOT, 'data', 'models', 'neox-facts');
    const model = await Model.load(dir);
    const name = 'layers.3.mlp.dense_4h_to_h.weight';
    const edited = perturbed(model, name, 0.02);
    const out = path.join(tmp, 'neox-edited');
    expect(edited.save(out).edited[0].dtype).toBe('F16');
    const reloaded = await Model.load(out);
    const stored = edited.asStored();
    expect(sameBytes(reloaded.weight(name).data, stored.weight(name).data)).toBe(true);
    // F16 rounding moved the weights (|Δ| ≤ 2⁻¹¹ relative), so asStored is not the float32 view.
    expect(sameBytes(stored.weight(name).data, edited.weight(name).data)).toBe(false);
    const prompt = 'The Space Needle is located in the city of';
    expect(sameBytes((await reloaded.logits(prompt)).data, (await stored.logits(prompt)).data)).toBe(true);
    expectOnlyEdited(dir, out, name, ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'config.json']);
    // The source itself is untouched by saving.
    expect(sameBytes(model.weight(name).data, (await Model.load(dir)).weight(name).data)).toBe(true);
  });

  it('sharded checkpoint: the edit lands in its own shard, the index and the other shard are copies', async () => {
    const src = path.join(ROOT, 'test', 'fixtures', 'tiny-neox');
    const dir = path.join(tmp, 'tiny-neox-sharded');
    fs.mkdirSync(dir);
    const file = SafetensorsFile.open(path.join(src, 'model.safetensors'));
    const half = Math.ceil(file.names.length / 2);
    const shard = (names: string[]) => Object.fromEntries(names.map((n) => [n, { dtype: 'F32' as const, shape: file.info(n).shape, data: file.readFloat32(n) }]));
    const [first, second] = writeShardedSafetensors(dir, [shard(file.names.slice(0, half)), shard(file.names.slice(half))]);
    file.close();
    fs.copyFileSync(path.join(src, 'config.json'), path.join(dir, 'config.json'));
    const model = await Model.load(dir);
    const ckpt = openCheckpoint(dir);
    const name = model.weightNames().find((n) => n.endsWith('mlp.dense_4h_to_h.weight') && path.basename(ckpt.info(n).file) === second)!;
    ckpt.close();
    const edited = perturbed(model, name, 0.05);
    const out = path.join(tmp, 'tiny-neox-sharded-edited');
    expect(edited.save(out).edited[0].file).toBe(second);
    for (const f of [first, 'model.safetensors.index.json', 'config.json']) expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(dir, f)))).toBe(true);
    const ids = [[5, 9, 100, 7]];
    expect(sameBytes((await (await Model.load(out)).logits(ids)).data, (await edited.logits(ids)).data)).toBe(true);
  });

  it('refuses to overwrite the source or a file, before writing anything', async () => {
    const dir = path.join(ROOT, 'test', 'fixtures', 'tiny-neox');
    const model = await Model.load(dir);
    const edited = perturbed(model, 'layers.1.mlp.dense_4h_to_h.weight', 0.05);
    expect(() => edited.save(dir)).toThrow(/is the source checkpoint itself/);
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    expect(() => edited.save(file)).toThrow(/exists and is not a directory/);
    const tied = await Model.load(path.join(ROOT, 'test', 'fixtures', 'tiny-mamba')); // its head is the embedding
    const bogus = tied.withWeights(new Map([['lm_head.weight', tied.weight('embeddings.weight')]]));
    const target = path.join(tmp, 'never-written');
    expect(() => bogus.save(target)).toThrow(/save: edited weight "lm_head.weight" is not stored in/);
    expect(fs.existsSync(target)).toBe(false);
  });
});

describe('saving an edited GPT-2 (Conv1D weights stored [in,out])', () => {
  it('the reload of an edited c_proj gives the edited logits bit for bit, F32 and (asStored) BF16', async () => {
    const src = path.join(ROOT, 'test', 'fixtures', 'tiny-gpt2');
    const ids = [[3, 17, 250, 9, 41, 100, 7]];
    const model = await Model.load(src);
    const name = 'layers.1.mlp.c_proj.weight'; // [64,256] here, stored [256,64]
    const edited = perturbed(model, name, 0.5);
    const out = path.join(tmp, 'gpt2-f32');
    edited.save(out);
    const reloaded = await Model.load(out);
    expect(sameBytes((await reloaded.logits(ids)).data, (await edited.logits(ids)).data)).toBe(true);
    expect(sameBytes((await reloaded.logits(ids)).data, (await model.logits(ids)).data)).toBe(false);
    // The same through a BF16 copy of the checkpoint: asStored() is what the reload computes.
    const bf = path.join(tmp, 'gpt2-bf16');
    fs.mkdirSync(bf);
    fs.copyFileSync(path.join(src, 'config.json'), path.join(bf, 'config.json'));
    const f = SafetensorsFile.open(path.join(src, 'model.safetensors'));
    writeShardedSafetensors(bf, [Object.fromEntries(f.names.map((n) => [n, { dtype: 'BF16' as const, shape: f.info(n).shape, data: f.readFloat32(n) }]))]);
    f.close();
    const bfModel = await Model.load(bf);
    const bfEdited = perturbed(bfModel, name, 0.5);
    bfEdited.save(path.join(tmp, 'gpt2-bf16-edited'));
    const bfReloaded = await Model.load(path.join(tmp, 'gpt2-bf16-edited'));
    expect(sameBytes((await bfReloaded.logits(ids)).data, (await bfEdited.asStored().logits(ids)).data)).toBe(true);
  });
});
