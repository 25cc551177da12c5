/**
 * Corruption strategies: how the "corrupted" run that states are restored into is made.
 *
 * - Alternative subject (the paper's default, romba `alt_patch`): the same template with another
 *   known subject s′ of the relation whose object differs. romba draws s′ with Python's unseeded
 *   `random`; we seed (per fact, so a fact's s′ does not depend on which other facts are traced).
 * - Gaussian noise (ROME): N copies of the clean prompt with noise ν·ε added to the subject-token
 *   embeddings, ν = 3σ where σ is the standard deviation of subject-token embeddings
 *   (ROME's collect_embedding_std); p(corrupted) is the mean over the copies.
 */
import { embeddingName } from '../../io/weights';
import * as aq from 'arquero';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { rng } from '../../runtime/generate';
import { gaussian } from '../../runtime/interventions';
import { alignPair, eosId, tracePrompt } from './prompts';

type Table = ReturnType<typeof aq.from>;

/** One corrupted run: its token ids, and noise added to the embeddings at some positions. */
export interface CorruptedRun {
  ids: number[];
  noise?: { positions: number[]; vectors: Float32Array[] }; // one [D] vector per position
}

export interface Corruption {
  strategy: 'alt-subject' | 'noise';
  /** Clean token ids (aligned with every corrupted run) and their strings. */
  clean: number[];
  tokens: string[];
  /** The clean subject's span, and the corrupted span [b, e) the AIE groups use (romba's e_range). */
  subjectRange: [number, number];
  span: [number, number];
  runs: CorruptedRun[];
  subject: string;
  prompt: string;
  altSubject?: string;
  altPrompt?: string;
  /** Token strings of the corrupted row (alt-subject). */
  corruptTokens?: string[];
  /** The fact's object, when known: a clean top-1 that is not a prefix of it makes the trace 'not-known'. */
  object?: string;
  /** Noise standard deviation ν (noise). */
  noiseStd?: number;
}

export interface PromptOptions {
  /** Text prepended to every prompt, e.g. "<|endoftext|> " as romba's demos (default none). */
  prefix?: string;
}

/**
 * Clean prompt `template` with `subject`, corrupted with `altSubject`; rows aligned by prepending
 * EOS tokens to the shorter one. Throws if the text after the subject tokenizes differently.
 */
export function altSubjectCorruption(model: Model, template: string, subject: string, altSubject: string, opts: PromptOptions = {}): Corruption {
  if (subject === altSubject) throw new FactlensError(`alternative subject must differ from the subject (${JSON.stringify(subject)})`);
  const clean = tracePrompt(model, template, subject, opts.prefix);
  const alt = tracePrompt(model, template.includes('{}') ? template : template.replace(subject, altSubject), altSubject, opts.prefix);
  const pair = alignPair(clean, alt, eosId(model));
  return {
    strategy: 'alt-subject',
    clean: pair.clean,
    tokens: model.tokenStrings(pair.clean),
    subjectRange: pair.cleanRange,
    span: pair.span,
    runs: [{ ids: pair.corrupt }],
    subject,
    prompt: clean.text,
    altSubject,
    altPrompt: alt.text,
    corruptTokens: model.tokenStrings(pair.corrupt),
  };
}

export interface NoiseOptions extends PromptOptions {
  /** Noise standard deviation ν (e.g. 3 × subjectEmbeddingStd). */
  std: number;
  /** Noisy copies (default 10, as ROME and romba). */
  samples?: number;
  seed?: number; // default 1, as ROME's RandomState(1)
}

/** ROME's corruption: `samples` noisy copies of the prompt, noise on the subject's embeddings only. */
export function noiseCorruption(model: Model, template: string, subject: string, opts: NoiseOptions): Corruption {
  if (!(opts.std >= 0)) throw new FactlensError(`noise std must be a non-negative number, got ${opts.std}`);
  const p = tracePrompt(model, template, subject, opts.prefix);
  const D = model.config.dModel;
  const random = rng(opts.seed ?? 1);
  const positions: number[] = [];
  for (let t = p.subjectRange[0]; t < p.subjectRange[1]; t++) positions.push(t);
  const runs: CorruptedRun[] = [];
  for (let k = 0; k < (opts.samples ?? 10); k++) {
    const vectors = positions.map(() => {
      const v = new Float32Array(D); // [D]
      for (let i = 0; i < D; i++) v[i] = opts.std * gaussian(random);
      return v;
    });
    runs.push({ ids: p.ids, noise: { positions, vectors } });
  }
  return {
    strategy: 'noise', clean: p.ids, tokens: model.tokenStrings(p.ids), subjectRange: p.subjectRange, span: p.subjectRange,
    runs, subject, prompt: p.text, noiseStd: opts.std,
  };
}

/**
 * ROME's collect_embedding_std: the standard deviation (unbiased) of all embedding entries of the
 * subjects' tokens, each subject tokenized on its own. Multiply by 3 for ROME's noise level "s3".
 */
export function subjectEmbeddingStd(model: Model, subjects: string[]): number {
  const W = model.weight(embeddingName(model.arch)); // [V,D]
  const D = model.config.dModel;
  let n = 0;
  let mean = 0;
  let m2 = 0;
  for (const s of subjects) {
    for (const id of model.encode(s)) {
      for (let i = 0; i < D; i++) {
        const x = W.data[id * D + i];
        n++;
        const d = x - mean;
        mean += d / n;
        m2 += d * (x - mean);
      }
    }
  }
  if (n < 2) throw new FactlensError('subjectEmbeddingStd: give at least one subject');
  return Math.sqrt(m2 / (n - 1));
}

export interface AltChoiceOptions {
  seed?: number; // default 0
  /** Candidates for s′ (default: the facts themselves); romba uses all known samples of the relation. */
  pool?: Table;
  /** Extra condition on a candidate (e.g. that the prompts align); rejected ones are skipped. */
  accept?: (fact: FactRow, alt: FactRow) => boolean;
  /** Also require a different top-1 prediction (column predictedId); the paper does not (default false). */
  distinctPrediction?: boolean;
}

export interface FactRow {
  relation: string;
  subject: string;
  object: string;
  template?: string;
  predictedId?: number;
  [k: string]: unknown;
}

/**
 * Picks an alternative subject for every fact: uniformly among the pool's facts of the same
 * relation (and template) with a different subject and a different object (romba's
 * random_edit_targets). Adds columns altSubject and altObject; facts with no candidate are dropped.
 */
export function chooseAltSubjects(facts: Table, opts: AltChoiceOptions = {}): Table {
  const rows = facts.objects() as FactRow[];
  const pool = (opts.pool ?? facts).objects() as FactRow[];
  const out: FactRow[] = [];
  for (const f of rows) {
    const candidates = pool.filter((c) => c.relation === f.relation && c.template === f.template && c.subject !== f.subject && c.object !== f.object
      && (!opts.distinctPrediction || c.predictedId !== f.predictedId))
      .sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0)); // independent of the pool's order
    const random = rng(hashString(`${opts.seed ?? 0}\u0000${f.relation}\u0000${f.subject}`));
    // A seeded shuffle; the first accepted candidate wins (a uniform choice among accepted ones).
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    }
    const alt = candidates.find((c) => !opts.accept || opts.accept(f, c));
    if (alt) out.push({ ...f, altSubject: alt.subject, altObject: alt.object });
  }
  return aq.from(out.length ? out : [], out.length ? undefined : [...facts.columnNames(), 'altSubject', 'altObject']);
}

/** Accepts a candidate s′ only if the two prompts align (identical tokens after the subject). */
export function alignsWith(model: Model, opts: PromptOptions = {}): (fact: FactRow, alt: FactRow) => boolean {
  return (f, a) => {
    try {
      altSubjectCorruption(model, f.template ?? '{}', f.subject, a.subject, opts);
      return true;
    } catch (e) {
      if (e instanceof FactlensError) return false;
      throw e;
    }
  };
}

/** FNV-1a, 32 bits. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
