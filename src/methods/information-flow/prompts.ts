/**
 * Fact prompts for the information-flow experiments: known facts of the relation files (zero-shot
 * template 0, optionally after "<|endoftext|> " as romba's knockout does), the subject's token span,
 * and the source sets of paper-spec §5.2: subject [b, e), subj_last {e−1}, non_subject (every other
 * position but the last, the EOS prefix included), prompt_last {T−1}.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { fillTemplate, loadRelation, Relation } from '../../data/relations';
import { knownFacts } from '../../data/known-facts';
import { subjectSpan } from '../../data/subject-span';

export interface FactPrompt {
  relation: string;
  subject: string;
  object: string;
  template: string;
  prompt: string;
  ids: number[];
  /** Subject tokens [b, e). */
  subjectRange: [number, number];
  /** The answer token o: the model's top-1 next token on the clean prompt. */
  answer: number;
  answerText: string;
  /** p(o | prompt). */
  pClean: number;
}

export type SourceSet = 'subject' | 'subj_last' | 'non_subject' | 'prompt_last';
export const SOURCE_SETS: SourceSet[] = ['subject', 'subj_last', 'non_subject', 'prompt_last'];

/** Token span [b, e) of the subject's first occurrence at or after character `from` (data/subject-span.ts). */
export function subjectRange(model: Model, prompt: string, subject: string, from = 0): [number, number] {
  const span = subjectSpan(model, prompt, subject, { from });
  return [span.first, span.last + 1];
}

/** Positions of a source set in a prompt of T tokens with subject [b, e). */
export function sourcePositions(set: SourceSet, subject: [number, number], T: number): number[] {
  const [b, e] = subject;
  switch (set) {
    case 'subject':
      return range(b, e);
    case 'subj_last':
      return [e - 1];
    case 'non_subject':
      return range(0, T - 1).filter((t) => t < b || t >= e);
    case 'prompt_last':
      return [T - 1];
    default:
      throw new FactlensError(`unknown source set "${set}" (use ${SOURCE_SETS.join(', ')})`);
  }
}

export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

export interface FactPromptOptions {
  /** Known facts kept per relation (in file order). */
  perRelation: number;
  /** Text before every prompt, e.g. "<|endoftext|> " (romba's knockout); default none. */
  prefix?: string;
  /** Look at only the first n samples of each relation (a speed cap for notebooks). */
  samplesPerRelation?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Known facts of the given relations as prompts with subject spans and answers. */
export async function factPrompts(model: Model, relations: Array<string | Relation>, opts: FactPromptOptions): Promise<FactPrompt[]> {
  const rels = relations.map((r) => (typeof r === 'string' ? loadRelation(r) : r))
    .map((r) => (opts.samplesPerRelation ? { ...r, samples: r.samples.slice(0, opts.samplesPerRelation) } : r));
  const table = await knownFacts(model, rels, {
    prefix: opts.prefix, limit: opts.perRelation, batchSize: Math.max(8, 2 * opts.perRelation), onProgress: opts.onProgress,
  });
  const prefix = opts.prefix ?? '';
  return (table.objects() as Array<Record<string, unknown>>).map((f) => {
    const template = String(f.template);
    const subject = String(f.subject);
    const prompt = String(f.prompt);
    const from = prefix.length + template.indexOf('{}');
    if (prompt !== prefix + fillTemplate(template, subject)) throw new FactlensError(`unexpected prompt ${JSON.stringify(prompt)}`);
    return {
      relation: String(f.relation), subject, object: String(f.object), template, prompt, ids: model.encode(prompt),
      subjectRange: subjectRange(model, prompt, subject, from), answer: Number(f.predictedId), answerText: String(f.predicted), pClean: Number(f.p),
    };
  });
}
