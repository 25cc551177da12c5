/**
 * findSubject: where a subject's tokens are in a prompt, by string, so notebooks never do index
 * arithmetic on tokens (`indexOf` on a changed prompt gives −1 and patches the wrong token).
 * Built on subjectSpan, the subject finder every method uses.
 */
import { FactlensError } from '../errors';
import type { Model } from '../runtime/model';
import { subjectSpan } from './subject-span';

export interface SubjectTokens {
  /** Token indices of the subject, first to last (inclusive). */
  first: number;
  last: number;
  /** Every subject token index, first..last. */
  positions: number[];
  /** The prompt's tokens as strings and ids. */
  tokens: string[];
  ids: number[];
}

/**
 * The tokens of `subject` in `prompt` (text, or token ids decoded to text). Throws one line naming
 * both when the subject does not occur; `occurrence: 'last'` picks the last of several.
 */
export function findSubject(model: Model, prompt: string | number[], subject: string, opts: { occurrence?: 'first' | 'last' } = {}): SubjectTokens {
  const ids = typeof prompt === 'string' ? model.encode(prompt) : prompt;
  const text = typeof prompt === 'string' ? prompt : model.decode(ids);
  if (!ids.length) throw new FactlensError(`findSubject: the prompt ${JSON.stringify(text)} has no tokens`);
  const span = subjectSpan(model, text, subject, { ids, occurrence: opts.occurrence });
  const positions = Array.from({ length: span.last - span.first + 1 }, (_, i) => span.first + i);
  return { first: span.first, last: span.last, positions, tokens: model.tokenStrings(ids), ids };
}
