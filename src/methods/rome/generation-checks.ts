/**
 * Generation checks of an edit (ROME's generation metrics, without the TF-IDF reference score,
 * whose Wikipedia attribute snippets are not bundled):
 *   fluency: weighted bi/tri-gram entropy, per text (2/3·H₂ + 4/3·H₃)/2 in bits over word tokens,
 *            averaged over texts (ROME's n_gram_entropy; words split by a regex instead of NLTK);
 *   consistency: the fraction of generations that mention the new object (and the old one).
 */
import { generate } from '../../runtime/generate';
import type { Model } from '../../runtime/model';
import type { CounterFactRecord } from '../../data/counterfact';

/** Word and punctuation tokens (a stand-in for nltk.word_tokenize). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}]+)?|[^\s\p{L}\p{N}]/gu) ?? [];
}

/** Entropy in bits of the n-gram frequency distribution of one text. */
export function ngramEntropyOf(text: string, n: number): number {
  const w = words(text);
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= w.length; i++) {
    const g = w.slice(i, i + n).join('\u0001');
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  let h = 0;
  for (const c of counts.values()) h -= (c / total) * Math.log2(c / total);
  return h;
}

/** ROME's fluency: mean over texts of mean_n(weight_n · H_n), n = 2, 3 with weights 2/3, 4/3. */
export function ngramEntropy(texts: string[], ns = [2, 3], weights = [2 / 3, 4 / 3]): number {
  if (!texts.length) return NaN;
  const per = texts.map((t) => ns.reduce((s, n, i) => s + weights[i] * ngramEntropyOf(t, n), 0) / ns.length);
  return per.reduce((a, b) => a + b, 0) / per.length;
}

export const mentions = (text: string, object: string) => text.toLowerCase().includes(object.trim().toLowerCase());

export interface GenerationCheck {
  texts: string[];
  fluency: number;
  /** Fraction of generations mentioning the new / the true object. */
  mentionsNew: number;
  mentionsTrue: number;
}

export interface GenerationOptions {
  maxNewTokens?: number; // default 40
  topK?: number; // default 5 (ROME samples top-5)
  seed?: number; // default 0
  /** How many of the record's generation prompts (default all 10; duplicates are kept, as ROME does). */
  prompts?: number;
}

export async function generationCheck(model: Model, r: CounterFactRecord, opts: GenerationOptions = {}): Promise<GenerationCheck> {
  const prompts = r.generation_prompts.slice(0, opts.prompts ?? r.generation_prompts.length);
  if (!prompts.length) return { texts: [], fluency: NaN, mentionsNew: NaN, mentionsTrue: NaN };
  const gen = await generate(model, prompts, { maxNewTokens: opts.maxNewTokens ?? 40, topK: opts.topK ?? 5, seed: opts.seed ?? 0 });
  const texts = gen.texts.map((t, i) => prompts[i] + t);
  const frac = (o: string) => gen.texts.filter((t) => mentions(t, o)).length / gen.texts.length;
  return {
    texts,
    fluency: ngramEntropy(texts),
    mentionsNew: frac(r.requested_rewrite.target_new.str),
    mentionsTrue: frac(r.requested_rewrite.target_true.str),
  };
}
