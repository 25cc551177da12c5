/**
 * Prompt pairs from known facts, corrupted as causal tracing corrupts them (an alternative subject of
 * the same relation, rows aligned; causal-tracing/corruption.ts), with the clean run's top-1 token
 * as the answer, as causal tracing takes it.
 */
import type * as aq from 'arquero';
import type { Model } from '../../runtime/model';
import { altSubjectCorruption, alignsWith, chooseAltSubjects, FactRow } from '../causal-tracing/corruption';
import { argmax } from '../../runtime/logits';
import type { PromptPair } from './pairs';

type Table = ReturnType<typeof aq.from>;

export interface FactPair extends PromptPair {
  subject: string;
  altSubject: string;
  relation: string;
  prompt: string;
  tokens: string[];
  subjectRange: [number, number];
  /** The clean run's top-1 next token. */
  answer: number;
}

export async function factPairs(model: Model, facts: Table, opts: { seed?: number; pool?: Table } = {}): Promise<FactPair[]> {
  const chosen = chooseAltSubjects(facts, { seed: opts.seed, pool: opts.pool, accept: alignsWith(model) }).objects() as FactRow[];
  if (!chosen.length) return [];
  const cs = chosen.map((f) => ({ f, c: altSubjectCorruption(model, f.template!, f.subject, f.altSubject as string) }));
  const logits = (await model.run(cs.map((x) => x.c.clean), { logits: 'last' })).logits!; // [B,1,V]
  const V = logits.shape[2];
  return cs.map(({ f, c }, b) => ({
    clean: c.clean, corrupt: c.runs[0].ids, subject: f.subject, altSubject: f.altSubject as string, relation: f.relation, prompt: c.prompt,
    tokens: c.tokens, subjectRange: c.subjectRange, answer: argmax(logits.data.subarray(b * V, (b + 1) * V)),
  }));
}
