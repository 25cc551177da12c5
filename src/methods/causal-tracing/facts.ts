/**
 * Causal tracing over a table of known facts (from knownFacts): pick the corruption for each fact,
 * trace all of them in shared batches, and average by token group. The paper's experiment in one
 * call; the pieces (chooseAltSubjects, traceMany, averageIndirectEffects) stay usable on their own.
 */
import * as aq from 'arquero';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { Aie, AieOptions, averageIndirectEffects, subtractAie } from './aie';
import { alignsWith, altSubjectCorruption, chooseAltSubjects, Corruption, FactRow, noiseCorruption, subjectEmbeddingStd } from './corruption';
import { TraceKind, traceKinds } from './kinds';
import { TraceOptions, TraceResult, traceMany } from './trace';
import { checkpointed } from '../../runtime/run-log';
import { runSettings } from '../../runtime/run-settings';

type Table = ReturnType<typeof aq.from>;

export interface TraceFactsOptions extends TraceOptions {
  /** 'alt-subject' (the paper's default) or ROME's 'noise'. */
  strategy?: 'alt-subject' | 'noise';
  /** Seed for the choice of s′ (alt-subject) or the noise (noise). */
  seed?: number;
  /** Candidates for s′ (default: the facts table itself; romba uses all known samples). */
  pool?: Table;
  /** Noise: standard deviation (default 3 × subjectEmbeddingStd over the facts' subjects) and copies. */
  noiseStd?: number;
  samples?: number;
  /** Text prepended to every prompt (e.g. "<|endoftext|> "). */
  prefix?: string;
  /**
   * A run-log file (see runtime/run-log.ts): each finished group of `chunk` facts (default 8) is
   * appended durably, and a rerun with the same path and settings resumes where it stopped.
   */
  checkpoint?: string;
}

export interface FactTraces {
  /** The facts traced, with altSubject/altObject for alt-subject. */
  facts: Table;
  /** Per fact, one result per kind. */
  results: TraceResult[][];
  /** One row per fact: subject, alt subject, answer, p_clean, p_corrupt, status. */
  summary: Table;
  /** Noise: the standard deviation used. */
  noiseStd?: number;
}

/** Traces every fact of the table (columns relation, subject, object, template). */
export async function traceFacts(model: Model, facts: Table, opts: TraceFactsOptions = {}): Promise<FactTraces> {
  for (const col of ['relation', 'subject', 'template']) if (!facts.columnNames().includes(col)) throw new FactlensError(`traceFacts: the facts table needs a "${col}" column (use knownFacts)`);
  let corruptions: Corruption[];
  let traced: Table;
  let noiseStd: number | undefined;
  if ((opts.strategy ?? 'alt-subject') === 'alt-subject') {
    traced = chooseAltSubjects(facts, { seed: opts.seed, pool: opts.pool, accept: alignsWith(model, { prefix: opts.prefix }) });
    corruptions = (traced.objects() as FactRow[]).map((f) => altSubjectCorruption(model, f.template!, f.subject, f.altSubject as string, { prefix: opts.prefix }));
  } else {
    traced = facts;
    const rows = facts.objects() as FactRow[];
    noiseStd = opts.noiseStd ?? 3 * subjectEmbeddingStd(model, rows.map((f) => f.subject));
    corruptions = rows.map((f) => noiseCorruption(model, f.template!, f.subject, { std: noiseStd!, samples: opts.samples, seed: opts.seed, prefix: opts.prefix }));
  }
  const rows = traced.objects() as FactRow[];
  corruptions.forEach((c, i) => (c.object ??= rows[i].object)); // only facts the model answers with their object count
  const results = !corruptions.length ? [] : opts.checkpoint
    ? await checkpointed(opts.checkpoint, 'causalTracing.traceFacts', runSettings(model, opts, rows), rows.map((f, i) => `${i}: ${f.subject}`), opts.chunk ?? 8,
      (ix) => traceMany(model, ix.map((i) => corruptions[i]), opts))
    : await traceMany(model, corruptions, opts);
  const summary = aq.from(results.map((r, i) => ({
    relation: rows[i].relation, subject: r[0].subject, altSubject: r[0].altSubject ?? null, object: rows[i].object, answer: r[0].answer,
    high: r[0].high, low: r[0].low, status: r[0].status, tokens: r[0].tokens.length,
  })));
  return { facts: traced, results, summary, noiseStd };
}

/**
 * Up to `n` facts taken round-robin over relations (each relation's facts in table order), so that
 * every relation is represented however small `n` is.
 */
export function roundRobin(facts: Table, n: number): Table {
  const rows = facts.objects() as FactRow[];
  const byRelation = new Map<string, FactRow[]>();
  for (const f of rows) {
    if (!byRelation.has(f.relation)) byRelation.set(f.relation, []);
    byRelation.get(f.relation)!.push(f);
  }
  const out: FactRow[] = [];
  for (let k = 0; out.length < n && out.length < rows.length; k++) {
    for (const list of byRelation.values()) if (k < list.length && out.length < n) out.push(list[k]);
  }
  return out.length ? aq.from(out) : facts.slice(0, 0);
}

/** The traces of one kind, across facts. */
export function tracesOfKind(traces: FactTraces, kind: TraceKind): TraceResult[] {
  return traces.results.map((r) => {
    const found = r.find((x) => x.kind === kind);
    if (!found) throw new FactlensError(`no "${kind}" traces here (traced: ${r.map((x) => x.kind).join(', ')})`);
    return found;
  });
}

/** AIE per kind (in the architecture's order), plus the paper's o − s − g panel for Mamba. */
export function averageByKind(model: Model, traces: FactTraces, opts: AieOptions = {}): Aie[] {
  const kinds = traceKinds(model.arch).filter((k) => traces.results[0]?.some((x) => x.kind === k));
  const aies = kinds.map((k) => averageIndirectEffects(tracesOfKind(traces, k), opts));
  const get = (k: string) => aies.find((a) => a.kind === k);
  const [o, s, g] = [get('out'), get('ssm'), get('gate')];
  if (o && s && g) aies.push(subtractAie(o, s, g));
  return aies;
}
