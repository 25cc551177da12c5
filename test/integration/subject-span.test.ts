/**
 * The one subject finder (data/subject-span.ts) and the method-facing wrappers built on it:
 * ROME's subjectTokens, causal tracing's tokenRange, information flow's subjectRange, LRE's subjectPrompt.
 */
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { subjectSpan, tokenSpan } from '../../src/data/subject-span';
import { subjectTokens } from '../../src/methods/rome/subject';
import { tokenRange } from '../../src/methods/causal-tracing/prompts';
import { subjectRange } from '../../src/methods/information-flow/prompts';
import { subjectPrompt } from '../../src/methods/lre/prompts';

let model: Model;
beforeAll(async () => {
  model = await Model.load(path.join(__dirname, '..', '..', 'data', 'models', 'neox-facts'));
});

describe('subject spans', () => {
  const cases: [string, string, string][] = [
    ['{} is located in the city of', 'Big Ben', 'Big Ben'],
    ['He said that. {} is a', 'The Space Needle', ' The Space Needle'],
    ['The capital city of {} is', 'Brasília', ' Brasília'],
    ['He met {} in the city of', '東京', '東京'],
    ['{} is a town in', 'Ærøskøbing', 'Ærøskøbing'],
  ];

  it('covers exactly the tokens that overlap the subject, multi-byte first characters included', () => {
    for (const [template, subject, covered] of cases) {
      const text = template.replace('{}', subject);
      const at = template.indexOf('{}');
      const s = tokenSpan(model, text, at, at + subject.length);
      expect(model.decode(s.ids.slice(s.first, s.last + 1))).toBe(covered);
      expect(s.exact).toBe(true);
    }
  });

  it('every method wrapper agrees with it', () => {
    for (const [template, subject] of cases) {
      const text = template.replace('{}', subject);
      const at = template.indexOf('{}');
      const s = subjectSpan(model, text, subject);
      expect(subjectTokens(model, template, subject)).toMatchObject({ text, first: s.first, last: s.last });
      expect(tokenRange(model, text, s.ids, at, at + subject.length)).toEqual([s.first, s.last + 1]);
      expect(subjectRange(model, text, subject)).toEqual([s.first, s.last + 1]);
      expect(subjectPrompt(model, text, subject).subjectLast).toBe(s.last);
    }
  });

  it('picks the first occurrence from a character, or the last one; flags a subject that ends inside a token', () => {
    const text = 'Spain is in Spain';
    const first = subjectSpan(model, text, 'Spain');
    const last = subjectSpan(model, text, 'Spain', { occurrence: 'last' });
    expect(first.first).toBe(0);
    expect(last.last).toBe(first.ids.length - 1);
    expect(subjectSpan(model, text, 'Spain', { from: 1 })).toEqual(last);
    const inside = subjectSpan(model, 'Parisians like', 'Paris');
    expect(model.decode(inside.ids.slice(0, inside.last + 1)).startsWith('Paris')).toBe(true);
    expect(inside.exact).toBe(model.decode(inside.ids.slice(0, inside.last + 1)) === 'Paris');
  });

  it('names the subject and the prompt when the subject is missing or empty', () => {
    expect(() => subjectSpan(model, 'The Eiffel Tower is in', 'Big Ben')).toThrow(/"Big Ben" does not occur in the prompt "The Eiffel Tower is in"/);
    expect(() => subjectSpan(model, 'The Eiffel Tower is in', '')).toThrow(/subject is empty/);
    expect(() => tokenSpan(model, 'abc', 2, 9)).toThrow(/\[2, 9\)/);
  });
});
