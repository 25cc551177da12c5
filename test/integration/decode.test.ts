/**
 * Whole-stack decoding (runtime/decoder.ts): for every architecture's tiny fixture and both demo
 * models, a batch of prompts of different lengths decodes with logits within 1e-4 of a full
 * recompute of each row alone at every step (so greedy tokens are the same), one session call per
 * token, and bad sizes fail fast with the argument named.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { Decoder } from '../../src/runtime/decoder';
import { generate } from '../../src/runtime/generate';
import { Compiled } from '../../src/graph/session';
import { maxDiff } from '../support/max-diff';
import { generationCheck } from '../../src/methods/rome/generation-checks';
import { greedyCompletions } from '../../src/methods/rome/inspect';
import type { CounterFactRecord } from '../../src/data/counterfact';

const ROOT = path.join(__dirname, '..', '..');
const argmax = (x: Float32Array) => x.indexOf(Math.max(...x));
const FIXTURES = ['tiny-mamba', 'tiny-falcon-mamba', 'tiny-mamba2', 'tiny-mamba2-tied', 'tiny-neox', 'tiny-gpt2', 'tiny-llama', 'tiny-mistral', 'tiny-qwen2', 'tiny-qwen3', 'tiny-llama31', 'tiny-llama-yarn', 'tiny-mistral-window', 'tiny-qwen2-window'];
const PROMPTS = [[191, 80, 91, 37, 239], [7, 8], [200, 3, 9, 27, 1, 60, 2], [12]]; // ids < 256: the smallest fixture vocabulary

/** Greedy-decode `prompts` as one batch; at each step compare every row's logits with a full recompute of that row alone. */
async function checkAgainstRecompute(model: Model, prompts: number[][], steps: number): Promise<{ worst: number; tokens: number[][] }> {
  const V = model.config.vocabSize;
  const decoder = await Decoder.open(model, prompts, steps);
  const seqs = prompts.map((p) => [...p]);
  let worst = 0;
  let logits = await decoder.first(); // [B,1,V]
  for (let step = 0; step < steps; step++) {
    const chosen: number[] = [];
    for (const [b, seq] of seqs.entries()) {
      const got = logits.data.slice(b * V, (b + 1) * V);
      const want = (await model.logits([seq], { last: true })).data; // [1,1,V]
      worst = Math.max(worst, maxDiff(got, want));
      expect(argmax(got), `${model.name} row ${b} step ${step}`).toBe(argmax(want));
      chosen.push(argmax(want));
      seq.push(argmax(want));
    }
    if (step < steps - 1) logits = await decoder.next(chosen);
  }
  if (process.env.FACTLENS_DECODE_REPORT) console.log(`${model.name}: max |Δ logits| ${worst.toExponential(2)}`);
  return { worst, tokens: seqs.map((s, b) => s.slice(prompts[b].length)) };
}

afterEach(() => vi.restoreAllMocks());

for (const name of FIXTURES) {
  describe(`whole-stack decoding on ${name}`, () => {
    it('a ragged batch matches each row recomputed alone, step by step, within 1e-4', async () => {
      const model = await Model.load(path.join(ROOT, 'test', 'fixtures', name));
      const { worst, tokens } = await checkAgainstRecompute(model, PROMPTS, 6);
      expect(worst).toBeLessThan(1e-4);
      const gen = await generate(model, PROMPTS, { maxNewTokens: 6, stopAtEos: false });
      expect(gen.tokens).toEqual(tokens);
    });

    it('runs the whole stack as one session call per fed token', async () => {
      const model = await Model.load(path.join(ROOT, 'test', 'fixtures', name));
      await generate(model, PROMPTS, { maxNewTokens: 1, stopAtEos: false }); // compile first
      const into = vi.spyOn(Compiled.prototype, 'runInto');
      const run = vi.spyOn(Compiled.prototype, 'run');
      await generate(model, PROMPTS, { maxNewTokens: 6, stopAtEos: false });
      // Mamba reads the prompts with the ordinary forward; transformers read them on the decode session too.
      expect(into).toHaveBeenCalledTimes(model.recurrent ? 5 : 6);
      if (!model.recurrent) expect(run).not.toHaveBeenCalled();
    });
  });
}

describe('whole-stack decoding on the demo models', () => {
  for (const name of ['mamba-facts', 'neox-facts']) {
    it(`${name}: text prompts of different lengths match each row recomputed alone within 1e-4`, async () => {
      const model = await Model.load(path.join(ROOT, 'data', 'models', name));
      const texts = ['Michael Jordan plays the sport of', 'Paris is the capital of', 'Once upon a time, there was a little'];
      const { worst } = await checkAgainstRecompute(model, texts.map((t) => model.encode(t)), 8);
      expect(worst).toBeLessThan(1e-4);
    });
  }
});

describe("the library's generation checks decode all prompts of a check as one batch", () => {
  it('generationCheck (CounterFact fluency/consistency) and greedyCompletions open one decoder for all their prompts', async () => {
    const model = await Model.load(path.join(ROOT, 'data', 'models', 'mamba-facts'));
    const prompts = ['Paris is the capital of', 'Michael Jordan plays the sport of', 'Once upon a time'];
    const record = { generation_prompts: prompts, requested_rewrite: { target_new: { str: 'France' }, target_true: { str: 'Italy' } } } as unknown as CounterFactRecord;
    const open = vi.spyOn(Decoder, 'open');
    const g = await generationCheck(model, record, { maxNewTokens: 4 });
    expect(g.texts).toHaveLength(3);
    expect(open).toHaveBeenCalledTimes(1);
    expect(open.mock.calls[0][1].map((p) => model.decode(p))).toEqual(prompts);
    open.mockClear();
    expect(await greedyCompletions(model, prompts, 3)).toHaveLength(3);
    expect(open).toHaveBeenCalledTimes(1);
    expect(open.mock.calls[0][1]).toHaveLength(3);
  });
});

describe('generate: sizes', () => {
  it('refuses a maxNewTokens that is not a whole number >= 0, naming it', async () => {
    const model = await Model.load(path.join(ROOT, 'test', 'fixtures', 'tiny-mamba'));
    for (const bad of [-1, 1.5, NaN]) await expect(generate(model, [[1, 2]], { maxNewTokens: bad })).rejects.toThrow(/maxNewTokens must be a whole number/);
  });

  it('a transformer refuses more positions than it has before allocating a cache for them', async () => {
    const model = await Model.load(path.join(ROOT, 'test', 'fixtures', 'tiny-llama'));
    await expect(generate(model, [[1, 2, 3]], { maxNewTokens: 1e12 })).rejects.toThrow(/maxNewTokens 1000000000000 after a 3-token prompt needs .* positions; tiny-llama has \d+ \(max_position_embeddings\)/);
  });
});
