/**
 * `trace --model DIR --facts N --checkpoint FILE [--kinds resid,ssm_out,...] [--seed S] [--chunk K]`: causal
 * tracing over the first N known facts of the paper's relations (one per relation in turn), every
 * finished group of K facts (default 8) appended to FILE, so that a killed run resumes where it stopped when the
 * same command is run again. Prints the AIE table (kind, group, layer, aie) as JSON on completion.
 */
import type { Model } from '../runtime/model';
import { knownFacts } from '../data/known-facts';
import { loadRelations } from '../data/relations';
import { averageByKind, aieTable, roundRobin, traceFacts, traceKinds } from '../methods/causal-tracing';
import type { TraceKind } from '../methods/causal-tracing';

/** Hook-style spellings of the kinds (the paper's s, g, o), besides the kinds' own names. */
const KIND_ALIASES: Record<string, TraceKind> = { resid: 'residual', resid_post: 'residual', ssm_out: 'ssm', s: 'ssm', g: 'gate', o: 'out', mixer_out: 'out', mlp_out: 'mlp', attn_out: 'attn' };

export function parseKinds(model: Model, list: string | undefined): TraceKind[] | undefined {
  if (!list) return undefined;
  const known = traceKinds(model.arch);
  return list.split(',').filter(Boolean).map((k) => {
    const kind = (KIND_ALIASES[k] ?? k) as TraceKind;
    if (!known.includes(kind)) throw new Error(`--kinds: "${k}" is not a ${model.arch} trace kind (kinds: ${known.join(', ')}; aliases: ${Object.keys(KIND_ALIASES).join(', ')})`);
    return kind;
  });
}

export async function traceCommand(model: Model, flags: Map<string, string>, need: (name: string) => string): Promise<string> {
  const n = Number(need('facts'));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--facts must be a positive integer, got "${flags.get('facts')}"`);
  const kinds = parseKinds(model, flags.get('kinds'));
  const seed = Number(flags.get('seed') ?? 0);
  const relations = loadRelations();
  const chunk = flags.has('chunk') ? Number(flags.get('chunk')) : undefined;
  if (chunk !== undefined && !(Number.isInteger(chunk) && chunk > 0)) throw new Error(`--chunk must be a positive integer, got "${flags.get('chunk')}"`);
  // Up to n known facts per relation (knownFacts's limit), then n of them taken round-robin over relations.
  const known = await knownFacts(model, relations, { limit: n, batchSize: 16 });
  const facts = roundRobin(known, n);
  const traces = await traceFacts(model, facts, { pool: known, seed, kinds, chunk, checkpoint: need('checkpoint') });
  return JSON.stringify(aieTable(averageByKind(model, traces)).objects());
}
