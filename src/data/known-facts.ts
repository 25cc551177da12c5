/**
 * Known-fact selection (the "knowledge filter" of romba / evandez/relations): run every sample's
 * zero-shot prompt template.format(subject) and keep the facts whose top-1 next token is a
 * non-trivial, case-insensitive, whitespace-stripped prefix of the object ("Paris" is known if the
 * model's top token is " Par" or " Paris", not if it is " " or " the").
 */
import * as aq from 'arquero';
import type { Model } from '../runtime/model';
import { FactlensError } from '../errors';
import { bucketed, makeBatch } from '../runtime/batch';
import { argmax, logitsAt, probOf } from '../runtime/logits';
import { fillTemplate, Relation } from './relations';

type Table = ReturnType<typeof aq.from>;

/** romba's is_nontrivial_prefix: trimmed, lower-cased prediction is non-empty and starts the object. */
export function isNontrivialPrefix(prediction: string, target: string): boolean {
  const p = prediction.trim().toLowerCase();
  return p.length > 0 && target.trim().toLowerCase().startsWith(p);
}

export interface KnownFactsOptions {
  /** Which template: an index into promptTemplates (default 0, as the paper) or a template string. */
  template?: number | string;
  /** Text put before every prompt, e.g. "<|endoftext|> " as romba's demos do (default none). */
  prefix?: string;
  /** Prompts per forward pass (default 64). */
  batchSize?: number;
  /** Keep every sample with a `known` column instead of only the known ones. */
  keepAll?: boolean;
  /** Stop after this many known facts per relation (in file order). */
  limit?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops before the next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

export interface KnownFact {
  relation: string;
  subject: string;
  object: string;
  template: string;
  prompt: string;
  predicted: string; // the decoded top-1 token
  predictedId: number;
  p: number; // its probability
  known: boolean;
}

/**
 * Facts of one or more relations the model gets right at top-1, as an arquero table with columns
 * relation, subject, object, template, prompt, predicted, predictedId, p (and known with keepAll).
 * Exact duplicates (same subject and object) are checked once.
 */
export async function knownFacts(model: Model, relations: Relation | Relation[], opts: KnownFactsOptions = {}): Promise<Table> {
  const rels = Array.isArray(relations) ? relations : [relations];
  const bs = opts.batchSize ?? 64;
  const rows: KnownFact[] = [];
  let done = 0;
  const total = rels.reduce((s, r) => s + r.samples.length, 0);
  for (const rel of rels) {
    const template = typeof opts.template === 'string' ? opts.template : rel.promptTemplates[opts.template ?? 0];
    if (template === undefined) throw new FactlensError(`relation ${rel.id} has no template ${opts.template}`);
    const seen = new Set<string>();
    const samples = rel.samples.filter((s) => {
      const key = `${s.subject}\u0000${s.object}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
    let known = 0;
    for (let start = 0; start < samples.length; start += bs) {
      if (opts.limit !== undefined && known >= opts.limit) break;
      const chunk = samples.slice(start, start + bs);
      const prompts = chunk.map((s) => (opts.prefix ?? '') + fillTemplate(template, s.subject));
      const batch = bucketed(makeBatch(prompts.map((p) => model.encode(p)), model.config.vocabSize, model.padId), 8);
      const logits = (await model.run(batch, { logits: 'last', signal: opts.signal })).logits!; // [b,1,V]
      chunk.forEach((s, b) => {
        const row = logitsAt(logits, b, 0); // [V]
        const id = argmax(row);
        const p = probOf(row, id);
        const predicted = model.tokenStrings([id])[0];
        const ok = isNontrivialPrefix(predicted, s.object);
        if (ok && (opts.limit === undefined || known < opts.limit)) {
          known++;
          rows.push({ relation: rel.id, subject: s.subject, object: s.object, template, prompt: prompts[b], predicted, predictedId: id, p, known: true });
        } else if (opts.keepAll) {
          rows.push({ relation: rel.id, subject: s.subject, object: s.object, template, prompt: prompts[b], predicted, predictedId: id, p, known: ok });
        }
      });
      done += chunk.length;
      opts.onProgress?.(done, total);
    }
  }
  const table = aq.from(rows.length ? rows : [], rows.length ? undefined : COLUMNS);
  return opts.keepAll ? table : table.select(COLUMNS.filter((c) => c !== 'known'));
}

const COLUMNS = ['relation', 'subject', 'object', 'template', 'prompt', 'predicted', 'predictedId', 'p', 'known'];

