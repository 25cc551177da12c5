/**
 * CounterFact (Meng et al. 2022): counterfactual rewrite requests with paraphrase, neighbourhood,
 * attribute and generation prompts. Bundled: 500 complete records (data/counterfact/counterfact_500.json,
 * see its SOURCES.md). `knownRecords` keeps the records whose rewrite prompt the model completes
 * with the true object (romba's filter_known: the top-1 next token is a non-trivial,
 * case-insensitive prefix of target_true).
 */
import fs from 'fs';
import path from 'path';
import { FactlensError } from '../errors';
import type { Model } from '../runtime/model';
import { isNontrivialPrefix } from './known-facts';

export interface CounterFactRecord {
  case_id: number;
  pararel_idx?: number;
  requested_rewrite: {
    prompt: string; // with "{}" for the subject
    relation_id: string;
    subject: string;
    target_new: { str: string; id: string };
    target_true: { str: string; id: string };
  };
  paraphrase_prompts: string[];
  neighborhood_prompts: string[];
  attribute_prompts: string[];
  generation_prompts: string[];
}

export const COUNTERFACT_FILE = path.resolve(__dirname, '..', '..', 'data', 'counterfact', 'counterfact_500.json');

export function loadCounterFact(file = COUNTERFACT_FILE): CounterFactRecord[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FactlensError(`cannot read CounterFact file ${file}: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new FactlensError(`${file}: expected a JSON array of CounterFact records`);
  raw.forEach((r, i) => checkRecord(r, `${file}[${i}]`));
  return raw as CounterFactRecord[];
}

function checkRecord(r: unknown, where: string): void {
  const rec = r as CounterFactRecord;
  const rr = rec?.requested_rewrite;
  const ok = rr && typeof rr.prompt === 'string' && rr.prompt.includes('{}') && typeof rr.subject === 'string'
    && typeof rr.target_new?.str === 'string' && typeof rr.target_true?.str === 'string'
    && Array.isArray(rec.paraphrase_prompts) && Array.isArray(rec.neighborhood_prompts);
  if (!ok) throw new FactlensError(`${where}: not a CounterFact record (needs requested_rewrite {prompt with "{}", subject, target_new.str, target_true.str}, paraphrase_prompts, neighborhood_prompts)`);
}

/** The rewrite prompt with the subject filled in. */
export function rewritePrompt(r: CounterFactRecord): string {
  return r.requested_rewrite.prompt.replace('{}', r.requested_rewrite.subject);
}

/** The record as a ROME edit request (prompt template, subject, new and true objects). */
export function editRequestOf(r: CounterFactRecord): { prompt: string; subject: string; target: string; trueTarget: string } {
  const rr = r.requested_rewrite;
  return { prompt: rr.prompt, subject: rr.subject, target: rr.target_new.str, trueTarget: rr.target_true.str };
}

export interface KnownOptions {
  /** Stop after this many known records (in file order). */
  limit?: number;
  batchSize?: number; // default 64
}

/** Records whose rewrite prompt the model completes with (a prefix of) the true object. */
export async function knownRecords(model: Model, records: CounterFactRecord[], opts: KnownOptions = {}): Promise<CounterFactRecord[]> {
  const out: CounterFactRecord[] = [];
  const bs = opts.batchSize ?? 64;
  for (let i = 0; i < records.length; i += bs) {
    if (opts.limit !== undefined && out.length >= opts.limit) break;
    const chunk = records.slice(i, i + bs);
    const logits = (await model.run(chunk.map(rewritePrompt), { logits: 'last' })).logits!; // [b,1,V]
    const V = logits.shape[2];
    chunk.forEach((r, b) => {
      let best = 0;
      const off = b * V;
      for (let v = 1; v < V; v++) if (logits.data[off + v] > logits.data[off + best]) best = v;
      if (isNontrivialPrefix(model.decode([best]), r.requested_rewrite.target_true.str)) out.push(r);
    });
  }
  return opts.limit === undefined ? out : out.slice(0, opts.limit);
}
