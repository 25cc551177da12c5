/**
 * The TransformerLens habits on Model: toStrTokens, toTokens (the input every API takes), generate
 * (the generate function), getActName, one-line summaries of Tensor and Model, hooks whose errors
 * and wrong return values come back as one line naming hook and layer, and load errors that show the
 * resolved path and the working directory.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { inspect } from 'util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import { generate } from '../../src/runtime/generate';
import { getActName } from '../../src/runtime/act-name';
import { allHookNames, resolveHook } from '../../src/runtime/hooks';
import { HookError } from '../../src/runtime/hook-guard';

const DEMO = path.join(__dirname, '..', '..', 'data', 'models');
const FIX = path.join(__dirname, '..', 'fixtures');

describe.each(['mamba-facts', 'neox-facts'])('Model conveniences (%s)', (name) => {
  let model: Model;
  const prompt = 'The capital city of France is';

  beforeAll(async () => {
    model = await Model.load(path.join(DEMO, name));
  });

  it('toStrTokens: one string per token, from text or ids, joining back to the text', () => {
    const tokens = model.toStrTokens(prompt);
    expect(tokens).toEqual(model.encode(prompt).map((id) => model.decode([id])));
    expect(tokens.join('')).toBe(prompt);
    expect(model.toStrTokens(model.encode(prompt))).toEqual(tokens);
  });

  it('toTokens gives the batch that logits and runWithCache accept (same numbers as text)', async () => {
    const batch = model.toTokens([prompt, 'Michael Jordan plays the sport of']);
    expect(batch.rows[0]).toEqual(model.encode(prompt));
    expect(batch.B).toBe(2);
    const fromBatch = await model.logits(batch, { last: true });
    const fromText = await model.logits([prompt, 'Michael Jordan plays the sport of'], { last: true });
    expect(Array.from(fromBatch.data)).toEqual(Array.from(fromText.data));
  });

  it('generate equals the generate function (greedy and seeded top-k)', async () => {
    expect(await model.generate(prompt, { maxNewTokens: 3 })).toEqual(await generate(model, prompt, { maxNewTokens: 3 }));
    const opts = { maxNewTokens: 6, topK: 50, temperature: 3, seed: 7, stopAtEos: false };
    const story = 'Once upon a time';
    const sampled = await model.generate([story], opts);
    expect(sampled).toEqual(await generate(model, [story], opts));
    expect(sampled.tokens).not.toEqual((await generate(model, [story], { ...opts, seed: 8 })).tokens); // the seed matters here
  });

  it('shows as one line in notebooks', () => {
    const shown = inspect(model);
    expect(shown).not.toContain('\n');
    expect(shown).toContain(`Model ${name} (${model.arch}): ${model.nLayers} layers, d_model ${model.config.dModel}, vocabulary ${model.config.vocabSize}`);
    expect(shown).toContain(`${allHookNames(model.arch, model.nLayers, model.parallelResidual).length} hook points`);
  });
});

describe('Tensor summary', () => {
  it('shape, dtype and min/mean/max in one line instead of the elements', () => {
    const t = Tensor.from([1, -2, 3, 6], [2, 2]);
    expect(inspect(t)).toBe('Tensor [2,2] float32 min -2 mean 2 max 6');
    expect(String(t)).toBe(inspect(t));
    expect(inspect(new Tensor(new Float32Array(100_000).fill(0.5), [10, 10_000]))).toBe('Tensor [10,10000] float32 min 0.5 mean 0.5 max 0.5');
    expect(inspect(new Tensor(BigInt64Array.from([1n, 5n]), [2]))).toBe('Tensor [2] int64 min 1 mean 3 max 5');
    expect(inspect(Tensor.from([NaN, 1], [2]))).toBe('Tensor [2] float32 min 1 mean 1 max 1 (1 NaN)');
    expect(inspect(Tensor.zeros([0, 3]))).toBe('Tensor [0,3] float32 (empty)');
  });
});

describe('getActName', () => {
  it('builds names that resolve to the TransformerLens meaning on each architecture', () => {
    expect(getActName('resid_pre', 3)).toBe('layers.3.resid_pre');
    expect(getActName('resid_post', 0)).toBe('layers.0.resid_post');
    expect(getActName('attn_out', 2)).toBe('layers.2.attn.out');
    expect(getActName('mlp_out', 2)).toBe('layers.2.mlp.out');
    expect(getActName('pattern', 1)).toBe('layers.1.attn.pattern');
    expect(getActName('z', 1)).toBe('layers.1.attn.z');
    expect(getActName('z', 1, 'mixer')).toBe('layers.1.mixer.z');
    expect(getActName('post', 1, 'mlp')).toBe('layers.1.mlp.key');
    expect(getActName('normalized', 1, 'ln2')).toBe('layers.1.ln2');
    expect(getActName('q', 4, 'a')).toBe('layers.4.attn.q');
    expect(getActName('gate', 5)).toBe('layers.5.mixer.gate');
    expect(getActName('ssm_out', 5)).toBe('layers.5.mixer.ssm_out');
    expect(getActName('hook_resid_post', 5)).toBe('layers.5.resid_post');
    expect(getActName('mixer.out', 5)).toBe('layers.5.mixer.out');
    expect(getActName('embed')).toBe('embed');
    expect(resolveHook(getActName('delta', 1), 'mamba', 2).name).toBe('layers.1.mixer.dt');
    // The gated MLP's second branch (Llama family), which GPT-2 does not have.
    expect(getActName('pre_linear', 2, 'mlp')).toBe('layers.2.mlp.pre_linear');
    expect(resolveHook(getActName('hook_pre_linear', 2), 'llama', 4).name).toBe('layers.2.mlp.pre_linear');
    expect(() => resolveHook(getActName('pre_linear', 2), 'gpt2', 4)).toThrow(/unknown hook "layers\.2\.mlp\.pre_linear" for gpt2/);
  });

  it('one-line errors for unknown kinds, subs and layers', () => {
    expect(() => getActName('resid_sideways', 1)).toThrow(/^getActName: unknown kind "resid_sideways"; known kinds: .*resid_pre/);
    expect(() => getActName('q', 1, 'x')).toThrow(/unknown sub "x"/);
    expect(() => getActName('resid_pre')).toThrow(/per-layer hook point; give a layer/);
    expect(() => getActName('embed', 2)).toThrow(/model-level hook point; give no layer/);
    expect(() => getActName('resid_pre', -1)).toThrow(/non-negative integer, got -1/);
  });
});

describe('errors from user hooks', () => {
  let model: Model;
  const ids = [[3, 17, 42, 99]];
  beforeAll(async () => {
    model = await Model.load(path.join(FIX, 'tiny-mamba'));
  });

  it('a throw becomes one line with hook name and layer, the original as cause', async () => {
    const original = new TypeError('cannot read x of undefined');
    const err = await model.runWithHooks(ids, [['blocks.1.hook_ssm_output', () => { throw original; }]]).catch((e) => e);
    expect(err).toBeInstanceOf(HookError);
    expect(err.message).toBe('hook "layers.1.mixer.ssm_out" (layer 1) threw TypeError: cannot read x of undefined');
    expect(err.cause).toBe(original);
    expect(inspect(err)).toBe(`HookError: ${err.message}`);
    const embed = await model.runWithHooks(ids, [['embed', async () => { throw new Error('late'); }]]).catch((e) => e);
    expect(embed.message).toBe('hook "embed" threw Error: late');
  });

  it('a return value that is not a Tensor is rejected, naming what it was', async () => {
    const err = await model.runWithHooks(ids, [['layers.0.mixer.gate', () => [1, 2, 3] as unknown as Tensor]]).catch((e) => e);
    expect(err.message).toBe('hook "layers.0.mixer.gate" (layer 0) returned an array; a hook returns a Tensor (a replacement of the same shape) or nothing');
    const num = await model.runWithHooks(ids, [['layers.0.resid_post', () => 3 as unknown as Tensor]]).catch((e) => e);
    expect(num.message).toMatch(/^hook "layers.0.resid_post" \(layer 0\) returned a number;/);
    const ok = await model.runWithHooks(ids, [['layers.0.resid_post', (t) => t.clone()], ['layers.0.resid_post', () => undefined]]);
    expect(ok.logits).not.toBeNull();
  });
});

describe('load errors', () => {
  it('a relative path that does not exist is shown resolved, with the working directory', async () => {
    const rel = path.join('no-such-dir', 'mamba-facts');
    const err = await Model.load(rel).catch((e) => e);
    expect(err.message).toBe(`${rel} (resolved to ${path.resolve(rel)} from the working directory ${process.cwd()}): checkpoint directory not found`);
  });

  it('a relative path without config.json says so, resolved', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-noconfig-'));
    const rel = path.relative(process.cwd(), dir);
    try {
      await expect(Model.load(rel)).rejects.toThrow(`${rel} (resolved to ${dir} from the working directory ${process.cwd()}): no config.json`);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});
