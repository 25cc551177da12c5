/**
 * Few-shot (ICL) prompts and token bookkeeping of the LRE experiments
 * (evandez/relations make_prompt, find_subject_token_index, is_nontrivial_prefix).
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { fillTemplate, RelationSample } from '../../data/relations';

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

/**
 * Tokenize `text` and find the last token of the last occurrence of `subject`:
 * the token count of the text up to the subject's end (checked to be a prefix
 * of the full tokenization, so BPE merges across the boundary are caught).
 */
export function subjectPrompt(model: Model, text: string, subject: string): SubjectPrompt {
  const at = text.lastIndexOf(subject);
  if (at < 0) throw new FactlensError(`subject ${JSON.stringify(subject)} does not occur in the prompt ${JSON.stringify(text)}`);
  const ids = model.encode(text);
  const head = model.encode(text.slice(0, at + subject.length));
  let n = head.length;
  if (!head.every((id, i) => ids[i] === id)) {
    // The boundary merged into one token: the subject's last token is the one that covers its last character.
    n = commonPrefix(head, ids);
    if (n === 0) throw new FactlensError(`cannot locate the subject ${JSON.stringify(subject)} in the tokens of ${JSON.stringify(text)}`);
    n += 1;
  }
  return { text, subject, ids, subjectLast: n - 1 };
}

function commonPrefix(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Case- and space-insensitive, non-empty prefix test (the paper's correctness rule). */
export function isNontrivialPrefix(prediction: string, target: string): boolean {
  const p = prediction.toLowerCase().trim();
  return p.length > 0 && target.toLowerCase().trim().startsWith(p);
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
