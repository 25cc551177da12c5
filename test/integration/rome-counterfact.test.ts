/**
 * CounterFact data and scoring: the bundled records load, the known-record filter applies romba's
 * prefix rule, the teacher-forced NLL equals a direct computation, the metrics and S follow ROME's
 * summarize, a tiny layer sweep produces the table and the paper-style figure, and the generation
 * checks' n-gram entropy behaves.
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { softmaxRow } from '../../src/runtime/grad';
import { editRequestOf, knownRecords, loadCounterFact, rewritePrompt, CounterFactRecord } from '../../src/data/counterfact';
import { isNontrivialPrefix as nontrivialPrefix } from '../../src/data/known-facts';
import { continuationScores, harmonicMean, scoreCase, scoresText, scoreS, sDifference, summarize, CaseScores } from '../../src/methods/rome/counterfact-eval';
import { ngramEntropy, ngramEntropyOf, generationCheck, mentions } from '../../src/methods/rome/generation-checks';
import { romeLayerSweep } from '../../src/methods/rome/sweep';
import { sweepFigure } from '../../src/methods/rome/figures';
import { MATRIX_COLORS } from '../../src/methods/rome/sites';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');

describe('CounterFact', () => {
  let model: Model;
  let records: CounterFactRecord[];
  let known: CounterFactRecord[];
  beforeAll(async () => {
    model = await Model.load(path.join(MODELS, 'neox-facts'));
    records = loadCounterFact();
    known = await knownRecords(model, records.slice(0, 40));
  });

  it('loads the 500 bundled records and turns them into edit requests', () => {
    expect(records.length).toBe(500);
    const r = records[0];
    expect(r.requested_rewrite.prompt).toContain('{}');
    expect(r.paraphrase_prompts.length).toBe(2);
    expect(r.neighborhood_prompts.length).toBe(10);
    expect(editRequestOf(r)).toEqual({ prompt: '{} is located in', subject: 'Angola', target: 'Antarctica', trueTarget: 'Africa' });
    expect(nontrivialPrefix(' Af', 'Africa')).toBe(true);
    expect(nontrivialPrefix(' ', 'Africa')).toBe(false);
    expect(nontrivialPrefix(' Asia', 'Africa')).toBe(false);
  });

  it('keeps the records whose rewrite prompt the model completes with the true object', async () => {
    expect(known.length).toBeGreaterThan(20);
    for (const r of known.slice(0, 5)) {
      const l = (await model.logits(rewritePrompt(r), { last: true })).data;
      let best = 0;
      for (let v = 1; v < l.length; v++) if (l[v] > l[best]) best = v;
      expect(nontrivialPrefix(model.decode([best]), r.requested_rewrite.target_true.str)).toBe(true);
    }
  });

  it('scores continuations by token-averaged teacher-forced NLL', async () => {
    const prompt = 'The Space Needle is located in the city of';
    const [s] = await continuationScores(model, [{ prompt, target: 'New York' }]);
    const p = model.encode(prompt);
    const t = model.encode(' New York');
    const logits = await model.logits([p.concat(t)]);
    const V = logits.shape[2];
    let nll = 0;
    t.forEach((tok, m) => {
      const off = (p.length - 1 + m) * V;
      nll += (softmaxRow(logits.data, off, V).logZ - logits.data[off + tok]) / t.length;
    });
    expect(s.nll).toBeCloseTo(nll, 4);
  });

  it('computes ES/PS/NS, magnitudes and S as ROME summarizes them', async () => {
    const c = await scoreCase(model, known[0]); // unedited: the true object wins on the rewrite prompt
    expect(c.ES).toBe(0);
    expect(c.EM).toBeLessThan(0);
    expect(c.neighborhood.length).toBe(10);
    const s = summarize([{ ...c, ES: 1, PS: 0.5, NS: 1 }, { ...c, ES: 1, PS: 1, NS: 0.5 }]);
    expect(s.ES).toBe(100);
    expect(s.PS).toBe(75);
    expect(s.S).toBeCloseTo(3 / (1 / 100 + 2 / 75), 10);
    expect(harmonicMean([100, 0, 50])).toBe(0);
    // The prose form: mean ± standard error in %, over the cases whose score is defined (NaN left out).
    // PS over [0.5, 1]: mean 75, sd √0.125 = 0.3536, se 25.
    expect(scoresText([{ ...c, ES: 1, PS: 0.5, NS: 1 }, { ...c, ES: 1, PS: 1, NS: NaN }])).toBe('ES 100.0 ± 0.0 (n = 2), PS 75.0 ± 25.0 (n = 2), NS 100.0 ± 0.0 (n = 1)');
  });

  it('runs a tiny layer sweep and draws it in the paper colours', async () => {
    const { rows, cases } = await romeLayerSweep(model, known.slice(0, 1), {
      layers: [1, 6], templates: { lengths: [[5, 1]] }, steps: 8, stats: { samples: 2000, maxLength: 128, cache: false, progress: false }, progress: false,
    });
    expect(rows.map((r) => [r.matrix, r.layer, r.n])).toEqual([['W_down', 1, 1], ['W_down', 6, 1]]);
    expect(cases.length).toBe(2);
    // One record per site: each row is the summary of that site's case (S the harmonic mean of ES, PS, NS).
    rows.forEach((r, i) => {
      const s = summarize([cases[i]]);
      for (const k of ['ES', 'PS', 'NS', 'S'] as const) expect(r[k], `${r.matrix}@${r.layer} ${k}`).toBeCloseTo(s[k], 10);
      expect(r.S).toBeCloseTo(harmonicMean([r.ES, r.PS, r.NS]), 10);
    });
    const fig = sweepFigure(rows);
    const lines = fig.data.filter((t) => t.type === 'scatter');
    expect(lines.length).toBe(4);
    expect(lines.every((t) => t.line.color === MATRIX_COLORS.W_down)).toBe(true);
    expect(lines[0].x).toEqual([1, 6]);
  });

  it('measures fluency by weighted n-gram entropy and consistency by mentions', async () => {
    expect(ngramEntropyOf('a a a a a', 2)).toBe(0);
    expect(ngramEntropyOf('a b c d e', 2)).toBeCloseTo(2, 10); // 4 distinct bigrams
    expect(ngramEntropy(['a b c d e'])).toBeCloseTo((2 / 3 * 2 + 4 / 3 * Math.log2(3)) / 2, 10);
    // The record's new object set to what this model is known to generate here (" London."), so that
    // the mention fractions differ (1 for the new object, 0 for the true one) and a swap would show.
    const rw = known[0].requested_rewrite;
    const record = { ...known[0], requested_rewrite: { ...rw, target_new: { ...rw.target_new, str: 'London' } } };
    const g = await generationCheck(model, record, { prompts: 2, maxNewTokens: 8 });
    expect(g.texts.length).toBe(2);
    expect(g.fluency).toBeCloseTo(ngramEntropy(g.texts), 12);
    // The fraction of generated continuations (the text after each prompt) that mention the new object.
    const prompts = known[0].generation_prompts.slice(0, 2);
    g.texts.forEach((t, i) => expect(t.startsWith(prompts[i])).toBe(true));
    const continuations = g.texts.map((t, i) => t.slice(prompts[i].length));
    const frac = (object: string) => continuations.filter((t) => mentions(t, object)).length / 2;
    expect(g.mentionsNew).toBe(frac('London'));
    expect(g.mentionsTrue).toBe(frac(rw.target_true.str));
    expect(g.mentionsNew).not.toBe(g.mentionsTrue);
  });
});

describe('S with intervals over records', () => {
  const cases = (es: number[], shift = 0): CaseScores[] => es.map((e, i) => ({ caseId: i, ES: e, PS: (i % 3) / 2, NS: Math.min(1, 0.5 + shift + (i % 2) / 4) }) as unknown as CaseScores);
  const a = cases([1, 0, 1, 1, 0, 1, 1, 1, 0, 1]);
  it('scoreS brackets S and has width when records disagree', () => {
    const s = scoreS(a);
    expect(s.S).toBeCloseTo(summarize(a).S, 12);
    expect(s.lo).toBeLessThanOrEqual(s.S);
    expect(s.hi).toBeGreaterThanOrEqual(s.S);
    expect(s.hi - s.lo).toBeGreaterThan(1);
    expect(s.n).toBe(10);
  });
  it('sDifference is paired: identical scorings differ by exactly 0, a uniform NS gain is seen, other records are refused', () => {
    expect(sDifference(a, a)).toEqual({ diff: 0, lo: 0, hi: 0, n: 10 });
    const better = cases([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], 0.25);
    const d = sDifference(better, a);
    expect(d.diff).toBeCloseTo(summarize(better).S - summarize(a).S, 12);
    expect(d.lo).toBeGreaterThan(0);
    expect(() => sDifference(a, a.slice(1))).toThrow(/same records/);
  });
});
