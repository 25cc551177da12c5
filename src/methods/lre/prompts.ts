/**
 * Few-shot (ICL) prompts and token bookkeeping of the LRE experiments
 * (evandez/relations make_prompt, find_subject_token_index, is_nontrivial_prefix).
 */
import type { Model } from '../../runtime/model';
import { fillTemplate, RelationSample } from '../../data/relations';
import { subjectSpan } from '../../data/subject-span';
export { isNontrivialPrefix } from '../../data/known-facts';

/** The end-of-text prefix every LRE prompt starts with. */
export const EOS_PREFIX = '<|endoftext|> ';

/**
 * `"<|endoftext|> "` + one line `template(s_k) + " " + o_k` per example whose
 * subject differs from `subject`, joined with "\n", then "\n" + template(subject).
 * With no examples left: `"<|endoftext|> " + template(subject)`.
 */
export function makeIclPrompt(template: string, subject: string, examples: RelationSample[] = []): string {
  const lines = examples.filter((x) => x.subject !== subject).map((x) => `${fillTemplate(template, x.subject)} ${x.object}`);
  return EOS_PREFIX + (lines.length ? lines.join('\n') + '\n' : '') + fillTemplate(template, subject);
}

/** The shared part of every ICL prompt built from `examples` (for test subjects not among them). */
export function iclContext(template: string, examples: RelationSample[]): string {
  const lines = examples.map((x) => `${fillTemplate(template, x.subject)} ${x.object}`);
  return EOS_PREFIX + (lines.length ? lines.join('\n') + '\n' : '');
}

/** A tokenized prompt with the position of the last token of the last occurrence of the subject. */
export interface SubjectPrompt {
  text: string;
  subject: string;
  ids: number[];
  /** Index of the subject's last token. */
  subjectLast: number;
}

/** Tokenize `text` and find the last token of the last occurrence of `subject` (data/subject-span.ts). */
export function subjectPrompt(model: Model, text: string, subject: string): SubjectPrompt {
  const span = subjectSpan(model, text, subject, { occurrence: 'last' });
  return { text, subject, ids: span.ids, subjectLast: span.last };
}

/** Fisher–Yates shuffle with a seeded generator (returns a new array). */
export function shuffled<T>(xs: T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
