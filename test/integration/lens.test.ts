/**
 * topK tables, accumulatedResid and the logit lens, and findSubject, on the demo models: the lens's
 * last layer reproduces the model's own next-token distribution, its streams are the cached residuals,
 * and a subject is found by string (or refused in one line).
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { topK } from '../../src/lens/top-k';
import { accumulatedResid, logitLens } from '../../src/lens/logit-lens';
import { findSubject } from '../../src/data/find-subject';
import { logitsAt, softmax } from '../../src/runtime/logits';
import { maxDiff } from '../support/max-diff';

const DEMO = path.join(__dirname, '..', '..', 'data', 'models');
const prompt = 'The capital city of France is';

interface LensRow { layer: number; position: number; token: string; top_token: string; p_top: number; answer: string; p_answer: number }

describe.each(['mamba-facts', 'neox-facts'])('lens helpers (%s)', (name) => {
  let model: Model;
  let logits: Float32Array; // [V] at the last token
  beforeAll(async () => {
    model = await Model.load(path.join(DEMO, name));
    logits = (await model.logits(prompt, { last: true })).data;
  });

  it('topK: the k most likely tokens with their softmax probabilities and logits', async () => {
    const t = topK(logits, 4, model);
    const p = softmax(logits);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a]);
    expect(t.columnNames()).toEqual(['rank', 'id', 'token', 'p', 'logit']);
    expect(t.array('id')).toEqual(order.slice(0, 4));
    expect(t.array('rank')).toEqual([1, 2, 3, 4]);
    expect(t.array('token')).toEqual(order.slice(0, 4).map((id) => model.decode([id])));
    expect(t.array('p')).toEqual(order.slice(0, 4).map((id) => p[id]));
    expect(t.array('logit')).toEqual(order.slice(0, 4).map((id) => logits[id]));
    expect(t.get('token', 0)).toBe(' Paris'); // both demo models know this fact
    expect(topK(logits, 2).columnNames()).toEqual(['rank', 'id', 'p', 'logit']);
  });

  it('accumulatedResid: the embeddings then every resid_post, at the chosen positions', async () => {
    const acc = await accumulatedResid(model, prompt, { at: [1, 4] });
    const L = model.nLayers;
    const D = model.config.dModel;
    expect(acc.resid.shape).toEqual([L + 1, 2, D]);
    expect(acc.layers).toEqual([-1, ...Array.from({ length: L }, (_, l) => l)]);
    const { cache } = await model.runWithCache(prompt, ['embed', `layers.${L - 1}.resid_post`, 'layers.2.resid_post']);
    const at = (name: string, pos: number) => cache.get(name).data.subarray(pos * D, (pos + 1) * D);
    expect(Array.from(acc.resid.at(0).at(0).data)).toEqual(Array.from(at('embed', 1)));
    expect(Array.from(acc.resid.at(3).at(1).data)).toEqual(Array.from(at('layers.2.resid_post', 4)));
    expect(Array.from(acc.resid.at(L).at(1).data)).toEqual(Array.from(at(`layers.${L - 1}.resid_post`, 4)));
    expect(acc.tokens[4]).toBe(' France');
  });

  it('logitLens: one row per layer and position; the last layer is the model\'s own distribution', async () => {
    const rows = (await logitLens(model, prompt, { at: 'all' })).objects() as LensRow[];
    const T = model.encode(prompt).length;
    expect(rows).toHaveLength((model.nLayers + 1) * T);
    const all = await model.logits(prompt);
    for (let t = 0; t < T; t++) {
      const last = rows.find((r) => r.layer === model.nLayers - 1 && r.position === t)!;
      const p = softmax(logitsAt(all, 0, t));
      const best = p.indexOf(Math.max(...p));
      expect(last.top_token).toBe(model.decode([best]));
      expect(last.answer).toBe(model.decode([best]));
      expect(Math.abs(last.p_answer - p[best])).toBeLessThan(1e-4);
      expect(last.token).toBe(model.toStrTokens(prompt)[t]);
    }
    // An explicit answer by string: its first token is tracked at every layer.
    const rome = (await logitLens(model, prompt, { answer: ' Rome' })).objects() as LensRow[];
    expect(rome.every((r) => r.answer === ' Rome' && r.position === T - 1)).toBe(true);
    const pRome = softmax(logits)[model.encode(' Rome')[0]];
    expect(Math.abs(rome[rome.length - 1].p_answer - pRome)).toBeLessThan(1e-4);
  });

  it('logitLens at a subject and its errors', async () => {
    const rows = (await logitLens(model, prompt, { at: { subjectLast: 'France' } })).objects() as LensRow[];
    expect(new Set(rows.map((r) => r.position))).toEqual(new Set([4]));
    await expect(logitLens(model, prompt, { at: [99] })).rejects.toThrow('logit lens: position 99 is out of range (the prompt has 6 tokens)');
    await expect(logitLens(model, prompt, { at: { subjectLast: 'Spain' } })).rejects.toThrow(/the subject "Spain" does not occur in the prompt "The capital city of France is"/);
  });

  it('findSubject: positions by string, one-line error when absent', () => {
    const s = findSubject(model, 'The Space Needle is located in the city of', 'Space Needle');
    expect(s.tokens.slice(s.first, s.last + 1).join('')).toBe(' Space Needle');
    expect(s.positions).toEqual(Array.from({ length: s.last - s.first + 1 }, (_, i) => s.first + i));
    const f = findSubject(model, prompt, 'France');
    expect(f.tokens[f.last]).toBe(' France');
    expect(findSubject(model, model.encode(prompt), 'France').last).toBe(f.last);
    expect(() => findSubject(model, prompt, 'Italy')).toThrow('the subject "Italy" does not occur in the prompt "The capital city of France is"');
  });
});

describe('logit lens on a batch row', () => {
  it('reads the given row of a padded batch', async () => {
    const model = await Model.load(path.join(DEMO, 'mamba-facts'));
    const prompts = ['Michael Jordan plays the sport of', prompt];
    const single = await accumulatedResid(model, prompt, { at: 'last' });
    const batched = await accumulatedResid(model, prompts, { at: 'last', row: 1 });
    expect(batched.positions).toEqual(single.positions);
    expect(maxDiff(Array.from(batched.resid.data), Array.from(single.resid.data))).toBeLessThan(1e-4);
    await expect(accumulatedResid(model, prompts, { row: 2 })).rejects.toThrow('logit lens: row 2 is out of range (the input has 2 rows)');
  });
});
