/**
 * Generation: greedy equals feeding the argmax back by hand with a full
 * recompute (so Mamba's stateful stepping is exact); seeded top-k sampling is
 * reproducible and stays in the top k; ragged batches equal one by one;
 * generation stops at end-of-text.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { generate, pickToken, rng } from '../../src/runtime/generate';

const ROOT = path.join(__dirname, '..', '..');
const argmax = (x: Float32Array) => x.indexOf(Math.max(...x));

/** Next tokens by hand: rerun the whole sequence each step and choose with `choose`. */
async function byHand(model: Model, prompt: number[], n: number, choose: (logits: Float32Array) => number): Promise<number[]> {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) seq.push(choose((await model.logits([seq], { last: true })).data));
  return seq.slice(prompt.length);
}

for (const name of ['tiny-mamba', 'tiny-neox', 'tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-qwen3']) {
  describe(`generate on ${name}`, () => {
    let model: Model;
    const prompt = [191, 80, 91, 337, 439];
    beforeAll(async () => {
      model = await Model.load(path.join(ROOT, 'test', 'fixtures', name));
    });

    it('greedy generation equals argmax-feeding by hand with full recompute', async () => {
      const gen = await generate(model, [prompt], { maxNewTokens: 10, stopAtEos: false });
      const want = await byHand(model, prompt, 10, argmax);
      expect(gen.tokens[0]).toEqual(want);
      expect(gen.prompts[0]).toEqual(prompt);
      expect(gen.texts).toEqual(['']); // no tokenizer
    });

    it('seeded top-k sampling equals sampling by hand with full recompute, and is reproducible', async () => {
      const opts = { maxNewTokens: 10, topK: 20, temperature: 1.5, seed: 7, stopAtEos: false };
      const a = await generate(model, [prompt], opts);
      const b = await generate(model, [prompt], opts);
      expect(a.tokens).toEqual(b.tokens);
      const random = rng(7);
      const want = await byHand(model, prompt, 10, (lg) => pickToken(lg, 20, 1.5, random));
      expect(a.tokens[0]).toEqual(want);
      const seeds = await Promise.all([8, 9, 10].map((seed) => generate(model, [prompt], { ...opts, seed })));
      expect(seeds.some((g) => g.tokens[0].join() !== a.tokens[0].join())).toBe(true);
      expect(want).not.toEqual(await byHand(model, prompt, 10, argmax)); // sampling is not greedy here
    });

    it('batch rows of different lengths give the same as one by one', async () => {
      const prompts = [prompt, [7, 8], [400, 3, 9, 27, 1, 60, 2], [12, 13]];
      const batched = await generate(model, prompts, { maxNewTokens: 6, stopAtEos: false });
      expect(batched.prompts).toEqual(prompts);
      for (const [i, p] of prompts.entries()) {
        const one = await generate(model, [p], { maxNewTokens: 6, stopAtEos: false });
        expect(batched.tokens[i], `row ${i}`).toEqual(one.tokens[0]);
      }
    });
  });
}

describe('generate on the demo models (real tokenizer)', () => {
  let mamba: Model;
  let neox: Model;
  beforeAll(async () => {
    mamba = await Model.load(path.join(ROOT, 'data', 'models', 'mamba-facts'));
    neox = await Model.load(path.join(ROOT, 'data', 'models', 'neox-facts'));
  });

  it('greedy text continuation equals argmax-feeding by hand (mamba-facts: stateful steps)', async () => {
    const ids = mamba.encode('Michael Jordan plays the sport of');
    const gen = await generate(mamba, 'Michael Jordan plays the sport of', { maxNewTokens: 6, stopAtEos: false });
    const want = await byHand(mamba, ids, 6, argmax);
    expect(gen.tokens[0]).toEqual(want);
    expect(gen.texts[0]).toBe(mamba.decode(want));
    expect(gen.texts[0].startsWith(' basketball.')).toBe(true);
  });

  it('stopAtEos (the default) ends a row at <|endoftext|>, keeps it out, and lets other rows go on', async () => {
    for (const model of [mamba, neox]) {
      const eos = model.config.eosTokenId;
      const prompts = ['Michael Jordan plays the sport of', 'Once upon a time, there was a little', 'Paris is the capital of'];
      const free = await generate(model, prompts, { maxNewTokens: 5, stopAtEos: false });
      const stopped = await generate(model, prompts, { maxNewTokens: 5 });
      let sawEos = 0;
      for (const [i, toks] of free.tokens.entries()) {
        const at = toks.indexOf(eos);
        const want = at >= 0 ? toks.slice(0, at) : toks;
        if (at >= 0) sawEos++;
        expect(stopped.tokens[i], `${model.name} row ${i}`).toEqual(want);
        expect(stopped.tokens[i]).not.toContain(eos);
      }
      expect(sawEos).toBeGreaterThan(0);
      expect(stopped.tokens[1]).toHaveLength(5); // the story row has no eos and runs to the end
      expect(stopped.texts[0]).toBe(' basketball.');
    }
  });

  it('maxNewTokens is respected and 0 gives nothing', async () => {
    const g = await generate(neox, ['Paris is the capital of'], { maxNewTokens: 3, stopAtEos: false });
    expect(g.tokens[0]).toHaveLength(3);
    const none = await generate(neox, ['Paris is the capital of'], { maxNewTokens: 0 });
    expect(none.tokens).toEqual([[]]);
  });
});
