/**
 * Data for causal tracing: the relation files and their loader, the known-fact filter, subject
 * token spans, the alignment of clean and alternative-subject prompts, and the seeded choice of s′.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import * as aq from 'arquero';
import { Model } from '../../src/runtime/model';
import { fillTemplate, listRelations, loadRelation, loadRelations, PAPER_TRACING_RELATIONS } from '../../src/data/relations';
import { isNontrivialPrefix, knownFacts } from '../../src/data/known-facts';
import { alignPair, altSubjectCorruption, chooseAltSubjects, tracePrompt } from '../../src/methods/causal-tracing';

const DEMO = path.join(__dirname, '..', '..', 'data', 'models');

describe('relations', () => {
  it('loads the Hernandez et al. files and place_in_city', () => {
    expect(listRelations('factual')).toContain('place_in_city');
    expect(listRelations()).toContain('adj_antonym');
    const rels = loadRelations();
    expect(rels.map((r) => r.id)).toEqual(PAPER_TRACING_RELATIONS);
    const sport = loadRelation('person_plays_pro_sport');
    expect(sport.samples.length).toBe(318);
    expect(sport.promptTemplates[0]).toBe('{} plays the sport of');
    expect(sport.type).toBe('factual');
    expect(loadRelation('place_in_city').samples[0]).toEqual({ subject: 'Eiffel Tower', object: 'Paris' });
    expect(loadRelation('country_capital_city').samples.map((s) => s.object)).toContain('Brasília'); // double-escaped in the source
    expect(fillTemplate('{} plays the sport of', 'Michael Jordan')).toBe('Michael Jordan plays the sport of');
    expect(() => loadRelation('no_such_relation')).toThrow(/unknown relation/);
  });

  it('the known-fact rule: a non-trivial, case-insensitive, stripped prefix of the object', () => {
    expect(isNontrivialPrefix(' Par', 'Paris')).toBe(true);
    expect(isNontrivialPrefix(' paris', 'Paris ')).toBe(true);
    expect(isNontrivialPrefix(' ', 'Paris')).toBe(false);
    expect(isNontrivialPrefix(' Lyon', 'Paris')).toBe(false);
    expect(isNontrivialPrefix(' Parisian', 'Paris')).toBe(false);
  });
});

describe('prompts and alternative subjects on mamba-facts', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(DEMO, 'mamba-facts'));
  });

  it('known facts of a relation: every kept row is right at top-1', async () => {
    const rel = loadRelation('country_capital_city');
    const all = await knownFacts(model, rel, { keepAll: true });
    expect(all.numRows()).toBe(24);
    const known = await knownFacts(model, rel);
    expect(known.columnNames()).toEqual(['relation', 'subject', 'object', 'template', 'prompt', 'predicted', 'predictedId', 'p']);
    expect(known.numRows()).toBe((all.array('known') as boolean[]).filter(Boolean).length);
    expect(known.numRows()).toBeGreaterThan(5);
    const facts = known.objects() as Array<{ predicted: string; predictedId: number; object: string; p: number; prompt: string }>;
    // An independent run (one unbucketed batch): each row's id is the argmax and p its softmax probability.
    const logits = await model.logits(facts.map((f) => model.encode(f.prompt)), { last: true }); // [n,1,V]
    const V = logits.shape[2];
    facts.forEach((f, b) => {
      expect(isNontrivialPrefix(f.predicted, f.object)).toBe(true);
      expect(f.prompt.startsWith('The capital city of')).toBe(true);
      const row = logits.data.subarray(b * V, (b + 1) * V); // [V]
      expect(f.predictedId).toBe(row.indexOf(Math.max(...row)));
      expect(model.tokenStrings([f.predictedId])[0]).toBe(f.predicted);
      const max = row[f.predictedId];
      const z = row.reduce((s, x) => s + Math.exp(x - max), 0); // independent float64 softmax denominator
      expect(f.p).toBeCloseTo(1 / z, 5);
    });
  });

  it('subject spans cover exactly the subject text', () => {
    const p = tracePrompt(model, '{} is located in the city of', 'Eiffel Tower');
    expect(model.decode(p.ids.slice(...p.subjectRange)).trim()).toBe('Eiffel Tower');
    const q = tracePrompt(model, 'The capital city of {} is', 'Canada', '<|endoftext|> ');
    expect(q.ids[0]).toBe(model.tokenizer!.eosId);
    expect(model.decode(q.ids.slice(...q.subjectRange)).trim()).toBe('Canada');
    expect(model.decode(q.ids.slice(0, q.subjectRange[0]))).toBe('<|endoftext|> The capital city of');
  });

  it('alignment prepends EOS to the shorter prompt so the suffix tokens line up', () => {
    const c = altSubjectCorruption(model, '{} is located in the city of', 'Space Needle', 'Louvre');
    const alt = c.runs[0].ids;
    expect(alt.length).toBe(c.clean.length);
    const e = c.subjectRange[1];
    expect(alt.slice(e)).toEqual(c.clean.slice(e));
    const clean = tracePrompt(model, '{} is located in the city of', 'Space Needle');
    const other = tracePrompt(model, '{} is located in the city of', 'Louvre');
    const pair = alignPair(clean, other, 0);
    const shorter = clean.ids.length < other.ids.length ? pair.clean : pair.corrupt;
    expect(shorter.slice(0, Math.abs(clean.ids.length - other.ids.length)).every((id) => id === 0)).toBe(true);
    expect(pair.span).toEqual([Math.min(pair.cleanRange[0], pair.corruptRange[0]), pair.cleanRange[1]]);
    expect(pair.cleanRange[1]).toBe(pair.corruptRange[1]);
    expect(model.decode(alt.slice(...pair.corruptRange)).trim()).toBe('Louvre');
  });

  it('alternative subjects: same relation, different subject and object, seeded and order-independent', () => {
    const facts = aq.from([
      { relation: 'r', template: '{} is in', subject: 'A', object: 'x' },
      { relation: 'r', template: '{} is in', subject: 'B', object: 'x' },
      { relation: 'r', template: '{} is in', subject: 'C', object: 'y' },
      { relation: 'r', template: '{} is in', subject: 'D', object: 'z' },
      { relation: 'q', template: '{} has', subject: 'E', object: 'w' },
    ]);
    const a = chooseAltSubjects(facts, { seed: 1 }).objects() as Array<Record<string, string>>;
    expect(a.map((f) => f.subject)).toEqual(['A', 'B', 'C', 'D']); // E has no candidate
    for (const f of a) {
      const alt = (facts.objects() as Array<Record<string, string>>).find((g) => g.subject === f.altSubject)!;
      expect(alt.relation).toBe(f.relation);
      expect(f.altSubject).not.toBe(f.subject);
      expect(f.altObject).not.toBe(f.object);
    }
    const again = chooseAltSubjects(facts, { seed: 1 }).objects() as Array<Record<string, string>>;
    expect(again).toEqual(a);
    const reversed = chooseAltSubjects(aq.from([...facts.objects()].reverse()), { seed: 1 }).objects() as Array<Record<string, string>>;
    for (const f of a) expect(reversed.find((g) => g.subject === f.subject)!.altSubject).toBe(f.altSubject);
  });
});
