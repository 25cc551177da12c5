/**
 * gradients() and the CLI accept a weight by the checkpoint's own (Hugging Face) tensor name in every
 * supported dialect, giving exactly the gradient of the canonical name.
 */
import { execFile } from 'child_process';
import fs from 'fs';
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { gradients, nextTokenNll } from '../../src/runtime/grad';
import { resolveWeightName } from '../../src/runtime/weight-names';

const ROOT = path.join(__dirname, '..', '..');
const FIX = path.join(__dirname, '..', 'fixtures');
const ids = [[3, 17, 42, 99, 5]];

describe('weight names as the checkpoint spells them', () => {
  let mamba: Model;
  let neox: Model;
  beforeAll(async () => {
    mamba = await Model.load(path.join(FIX, 'tiny-mamba'));
    neox = await Model.load(path.join(FIX, 'tiny-neox'));
  });

  it('resolve to canonical names (HF Mamba, original state-spaces, GPT-NeoX), and hooks resolve to null', () => {
    expect(resolveWeightName(mamba, 'backbone.layers.1.mixer.out_proj.weight')).toBe('layers.1.mixer.out_proj.weight');
    expect(resolveWeightName(mamba, 'layers.1.mixer.out_proj.weight')).toBe('layers.1.mixer.out_proj.weight');
    expect(resolveWeightName(mamba, 'backbone.embedding.weight')).toBe('embeddings.weight');
    expect(resolveWeightName(mamba, 'backbone.embeddings.weight')).toBe('embeddings.weight');
    expect(resolveWeightName(mamba, 'backbone.norm_f.weight')).toBe('norm_f.weight');
    expect(resolveWeightName(neox, 'gpt_neox.layers.0.attention.dense.weight')).toBe('layers.0.attention.dense.weight');
    expect(resolveWeightName(neox, 'gpt_neox.embed_in.weight')).toBe('embed_in.weight');
    expect(resolveWeightName(neox, 'embed_out.weight')).toBe('embed_out.weight'); // untied: a stored weight
    expect(resolveWeightName(mamba, 'lm_head.weight')).toBe('lm_head.weight'); // tied: no stored tensor, model.weight resolves it
    expect(resolveWeightName(mamba, 'backbone.layers.1.mixer.out')).toBeNull();
    expect(resolveWeightName(mamba, 'backbone.layers.9.mixer.out_proj.weight')).toBeNull();
  });

  it('gradients by HF name equal gradients by canonical name', async () => {
    for (const [model, hf, canonical] of [
      [mamba, 'backbone.layers.1.mixer.out_proj.weight', 'layers.1.mixer.out_proj.weight'],
      [neox, 'gpt_neox.layers.1.mlp.dense_4h_to_h.weight', 'layers.1.mlp.dense_4h_to_h.weight'],
    ] as const) {
      const a = await gradients(model, ids, nextTokenNll, [hf]);
      const b = await gradients(model, ids, nextTokenNll, [canonical]);
      expect(a.grads.get(hf)!.shape).toEqual(model.weight(canonical).shape);
      expect(Array.from(a.grads.get(hf)!.data)).toEqual(Array.from(b.grads.get(canonical)!.data));
      expect(a.grads.get(hf)!.data.some((x) => x !== 0)).toBe(true);
    }
  });

  it('the CLI takes --wrt backbone.layers.N... and prints the weight gradient in PyTorch layout', async () => {
    const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'tiny-mamba', 'reference.json'), 'utf8')).cases[1];
    const run = (wrt: string) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['src/cli/main.ts', 'grad', '--model', 'test/fixtures/tiny-mamba', '--ids', ref.input_ids.join(','), '--wrt', wrt], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 },
        (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stdout, stderr }));
    });
    const [hf, canonical] = await Promise.all([run('backbone.layers.2.mixer.out_proj.weight'), run('layers.2.mixer.out_proj.weight')]);
    expect(hf.stderr).toBe('');
    expect(hf.code).toBe(0);
    expect(JSON.parse(hf.stdout).grad).toHaveLength(64); // [D][E], not unbatched
    expect(hf.stdout).toBe(canonical.stdout);
  });
});
