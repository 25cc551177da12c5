/**
 * Prompts with a subject: fill "{}" templates and find the subject's tokens. The subject span is
 * found from character offsets of the tokenised prompt (each token's end = the length of the
 * decoded prefix up to it), so it is right however the tokenizer merges the subject with its
 * neighbours; `exact` says whether the subject's last character ends a token (ROME's
 * prefix/subject/suffix tokenisation assumes it does).
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';

export interface SubjectTokens {
  text: string;
  ids: number[];
  /** Token indices of the subject's first and last tokens (inclusive). */
  first: number;
  last: number;
  /** True when the subject ends exactly at a token boundary. */
  exact: boolean;
}

/** A template with exactly one "{}" (the subject slot). */
export function checkTemplate(template: string, what = 'prompt'): void {
  const n = template.split('{}').length - 1;
  if (n !== 1) throw new FactlensError(`${what} "${template}" must contain exactly one "{}" (the subject), found ${n}`);
}

/**
 * A prompt as a "{}" template: given with "{}" already, or a filled prompt in which the subject's
 * first occurrence becomes "{}".
 */
export function asTemplate(prompt: string, subject: string): string {
  if (!subject.trim()) throw new FactlensError('the subject is empty');
  if (prompt.includes('{}')) {
    checkTemplate(prompt);
    return prompt;
  }
  const at = prompt.indexOf(subject);
  if (at < 0) throw new FactlensError(`the subject "${subject}" is not in the prompt "${prompt}" (give the prompt with the subject in it, or as a template with "{}")`);
  return prompt.slice(0, at) + '{}' + prompt.slice(at + subject.length);
}

export function fill(template: string, subject: string): string {
  checkTemplate(template);
  return template.replace('{}', subject);
}

/** Tokenise template.format(subject) and locate the subject's tokens. */
export function subjectTokens(model: Model, template: string, subject: string): SubjectTokens {
  checkTemplate(template);
  const start = template.indexOf('{}');
  const text = template.slice(0, start) + subject + template.slice(start + 2);
  const end = start + subject.length;
  const ids = model.encode(text);
  const ends = tokenEnds(model, ids);
  if (ends[ends.length - 1] !== text.length) {
    // The tokenizer changed the text (normalisation): fall back to tokenising up to the subject.
    const upto = model.encode(text.slice(0, end)).length;
    const before = model.encode(text.slice(0, start).replace(/\s+$/, '')).length;
    const last = Math.min(upto, ids.length) - 1;
    return { text, ids, first: Math.min(before, last), last, exact: false };
  }
  const last = ends.findIndex((e) => e >= end);
  const first = ends.findIndex((e) => e > start);
  if (last < 0 || first < 0) throw new FactlensError(`cannot locate the subject "${subject}" in the tokens of "${text}"`);
  return { text, ids, first, last, exact: ends[last] === end };
}

/** Character end offset of each token in the decoded text. */
function tokenEnds(model: Model, ids: number[]): number[] {
  const ends: number[] = [];
  for (let i = 0; i < ids.length; i++) ends.push(model.decode(ids.slice(0, i + 1)).length);
  // A multi-byte character split across tokens decodes to U+FFFD until complete: keep ends monotone.
  for (let i = ends.length - 2; i >= 0; i--) ends[i] = Math.min(ends[i], ends[i + 1]);
  return ends;
}
