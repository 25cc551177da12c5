/**
 * Prompts with a subject: fill "{}" templates and find the subject's tokens (data/subject-span.ts).
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { tokenSpan, TokenSpan } from '../../data/subject-span';

/** The filled prompt and its subject's tokens (first and last inclusive, `exact` = ends a token). */
export type SubjectTokens = TokenSpan & { text: string };

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
  if (!subject) throw new FactlensError('the subject is empty');
  return template.replace('{}', () => subject); // a function: "$&" in a subject stays literal
}

/** Tokenise template.format(subject) and locate the subject's tokens. */
export function subjectTokens(model: Model, template: string, subject: string): SubjectTokens {
  const text = fill(template, subject);
  const start = template.indexOf('{}');
  return { text, ...tokenSpan(model, text, start, start + subject.length) };
}
