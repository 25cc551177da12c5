/**
 * Restoration sweeps: for every (layer, token) cell, restore the clean run's state into the
 * corrupted run and record p(answer), the answer being the clean run's argmax (romba's
 * calculate_hidden_flow + trace_important_states / trace_important_window). Cells of many prompts
 * run in shared batches (runner.ts); restoreStates() is the plain, one-run-per-question reference.
 */
import * as aq from 'arquero';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { ActivationCache } from '../../runtime/cache';
import { interventionHooks, InterventionSpec } from '../../runtime/interventions';
import type { Row } from '../../runtime/sweep';
import { BaseRun, baseRuns, cleanRuns, KindCell, runKind } from './runner';
import { Corruption, CorruptedRun } from './corruption';
import { DEFAULT_MIN_GAP, EffectStatus, effectStatus, normalizeGrid } from './effects';
import { argmax, probOf } from '../../runtime/logits';
import { kindInfo, PAPER_WINDOW, restoredLayers, TraceKind, traceKinds } from './kinds';
import { isNontrivialPrefix } from '../../data/known-facts';

type Table = ReturnType<typeof aq.from>;

export interface TraceOptions {
  /** Kinds of state to restore (default: every kind of the architecture). */
  kinds?: TraceKind[];
  /** Window size for the windowed kinds (default 10, the paper's). */
  window?: number;
  /** Layers (window centres) to sweep (default all). */
  layers?: number[];
  /** Token positions to sweep (default all). */
  positions?: number[];
  /** Minimum p_clean − p_corrupt for IE to be defined (see effects.ts). */
  minGap?: number;
  /** Cells per forward pass (default: the engine's memory-based autoBatchSize). */
  batchSize?: number;
  /** Prompts whose base runs are held at once (default: a memory estimate). */
  chunk?: number;
  /** Run a cell from its token on, from the recurrent state (SSMs) or the keys/values before it (transformers); default true, exact. */
  suffix?: boolean;
  /** Pad cell batches to a multiple of this many tokens (default 4; see runner.ts). */
  bucket?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops the trace before its next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

export interface TraceResult {
  kind: TraceKind;
  label: string;
  /** Layers restored per cell: 1 for single-layer kinds, the window size otherwise. */
  window: number;
  strategy: Corruption['strategy'];
  layers: number[]; // columns: layer (or window centre)
  positions: number[]; // rows: token positions
  tokens: string[]; // every token of the clean (aligned) prompt
  /** Restored p(answer), [positions][layers]; averaged over corrupted runs (noise samples). */
  p: number[][];
  /** Relative recovery (p − low)/(high − low), [positions][layers]; NaN when status is not 'ok'. */
  ie: number[][];
  high: number; // p(answer | clean)
  low: number; // p(answer | corrupted), mean over corrupted runs
  status: EffectStatus;
  answerId: number;
  answer: string;
  subjectRange: [number, number];
  span: [number, number]; // the corrupted span used for the AIE groups
  subject: string;
  prompt: string;
  altSubject?: string;
  altPrompt?: string;
}

/** Embedding noise of a corrupted run as interventions (add a vector at each noisy position). */
export function noiseSpecs(run: CorruptedRun): InterventionSpec[] {
  if (!run.noise) return [];
  return run.noise.positions.map((t, i) => ({ hook: 'embed', positions: [t], op: 'add' as const, value: Array.from(run.noise!.vectors[i]) }));
}

/** Causal traces of one prompt for the given kinds (one result per kind). */
export async function traceCorruption(model: Model, c: Corruption, opts: TraceOptions = {}): Promise<TraceResult[]> {
  return (await traceMany(model, [c], opts))[0];
}

/**
 * Causal traces of many prompts at once (cells of all prompts share batches): for each corruption,
 * one result per kind. Prompts are processed in chunks of `chunk` (default: a memory estimate).
 */
export async function traceMany(model: Model, corruptions: Corruption[], opts: TraceOptions = {}): Promise<TraceResult[][]> {
  const L = model.nLayers;
  const kinds = (opts.kinds ?? traceKinds(model.arch)).map((k) => kindInfo(model.arch, k));
  const window = opts.window ?? PAPER_WINDOW;
  const layers = opts.layers ?? [...Array(L).keys()];
  const minGap = opts.minGap ?? DEFAULT_MIN_GAP;
  for (const l of layers) if (!(l >= 0 && l < L)) throw new FactlensError(`causal tracing: layer ${l} is out of range 0..${L - 1}`);
  const positionsOf = (c: Corruption) => opts.positions ?? [...Array(c.clean.length).keys()];
  for (const c of corruptions) {
    for (const r of c.runs) if (r.ids.length !== c.clean.length) throw new FactlensError('causal tracing: clean and corrupted rows must have equal length (align them first)');
    for (const t of positionsOf(c)) if (!(t >= 0 && t < c.clean.length)) throw new FactlensError(`causal tracing: position ${t} is out of range 0..${c.clean.length - 1}`);
  }
  const locals = [...new Set(kinds.map((k) => k.local))];
  const cleanLayers = [...new Set(kinds.flatMap((k) => layers.flatMap((l) => restoredLayers(k, l, window, L))))].sort((a, b) => a - b);
  const total = corruptions.reduce((s, c) => s + c.runs.length * positionsOf(c).length, 0) * kinds.length * layers.length;
  let done = 0;
  const chunk = opts.chunk ?? chunkSize(model, Math.max(...corruptions.map((c) => c.clean.length)));
  const out: TraceResult[][] = [];
  for (let c0 = 0; c0 < corruptions.length; c0 += chunk) {
    const cs = corruptions.slice(c0, c0 + chunk);
    const clean = await cleanRuns(model, cs.map((c) => c.clean), locals, cleanLayers);
    const answers = clean.logits.map((lg) => argmax(lg));
    const highs = clean.logits.map((lg, i) => probOf(lg, answers[i]));
    const runOf: number[] = []; // base run -> corruption
    const rows: number[][] = [];
    cs.forEach((c, i) => c.runs.forEach((r) => (runOf.push(i), rows.push(r.ids))));
    const base = await baseRunsWithNoise(model, cs, rows);
    const lows = cs.map(() => 0);
    base.logits.forEach((lg, r) => (lows[runOf[r]] += probOf(lg, answers[runOf[r]]) / cs[runOf[r]].runs.length));
    // p sums per corruption, kind, position, layer
    const sums = cs.map((c) => kinds.map(() => positionsOf(c).map(() => new Float64Array(layers.length))));
    for (const [ki, k] of kinds.entries()) {
      const cells: KindCell[] = []; // out: the position's index; layer index li = layers.indexOf(layer)
      layers.forEach((layer) => runOf.forEach((ci, r) => positionsOf(cs[ci]).forEach((pos, pi) => cells.push({ run: r, clean: ci, pos, out: pi, layer }))));
      const layerIndex = new Map(layers.map((l, li) => [l, li]));
      await runKind(model, k, window, cells, base.runs, clean.states, (cell, logits) => {
        sums[cell.clean][ki][cell.out][layerIndex.get(cell.layer)!] += probOf(logits, answers[cell.clean]) / cs[cell.clean].runs.length;
      }, { batchSize: opts.batchSize, suffix: opts.suffix, bucket: opts.bucket, onBatch: (n) => opts.onProgress?.((done += n), total), signal: opts.signal });
    }
    cs.forEach((c, ci) => {
      const answer = model.tokenizer ? model.tokenStrings([answers[ci]])[0] : `<|id ${answers[ci]}|>`; // fixtures have no tokenizer
      const known = c.object === undefined || !model.tokenizer || isNontrivialPrefix(answer, c.object);
      const status: EffectStatus = known ? effectStatus(highs[ci], lows[ci], minGap) : 'not-known';
      out.push(kinds.map((k, ki) => {
        const p = sums[ci][ki].map((row) => Array.from(row));
        return {
          kind: k.kind, label: k.label, window: k.windowed ? window : 1, strategy: c.strategy, layers, positions: positionsOf(c), tokens: c.tokens,
          p, ie: status === 'ok' ? normalizeGrid(p, highs[ci], lows[ci], minGap) : p.map((row) => row.map(() => NaN)), high: highs[ci], low: lows[ci], status, answerId: answers[ci], answer,
          subjectRange: c.subjectRange, span: c.span, subject: c.subject, prompt: c.prompt, altSubject: c.altSubject, altPrompt: c.altPrompt,
        };
      }));
    });
  }
  return out;
}

/** Corrupted base runs; runs with embedding noise get it through an `embed` hook per row. */
async function baseRunsWithNoise(model: Model, cs: Corruption[], rows: number[][]): Promise<{ runs: BaseRun[]; logits: Float32Array[] }> {
  const specs: InterventionSpec[] = [];
  let r = 0;
  for (const c of cs) for (const run of c.runs) specs.push(...noiseSpecs(run).map((s) => ({ ...s, rows: [r] }))), r++;
  return baseRuns(model, rows, specs.length ? interventionHooks(model, specs) : undefined);
}

/** Prompts per chunk: keep the Mamba per-position states of a chunk under ~512 MB. */
function chunkSize(model: Model, T: number): number {
  if (model.arch !== 'mamba') return 64;
  const c = model.mambaConfig;
  const bytes = 4 * T * model.nLayers * (c.dInner * c.dState + c.dInner + c.dModel);
  return Math.max(1, Math.min(64, Math.floor((512 * 2 ** 20) / bytes)));
}

/**
 * p(answer) with the given states restored all at once (any layers and positions, one kind):
 * e.g. every layer at every position gives back p_clean; nothing gives p_corrupt.
 */
export async function restoreStates(
  model: Model, c: Corruption, kind: TraceKind, cells: Array<{ layer: number; pos: number }>, answerId?: number,
): Promise<{ p: number; answerId: number }> {
  const k = kindInfo(model.arch, kind);
  const names = [...new Set(cells.map((x) => `layers.${x.layer}.${k.local}`))];
  const clean = await model.run([c.clean], { cache: names, logits: 'last' });
  const id = answerId ?? argmax(clean.logits!.data);
  const cache: ActivationCache = clean.cache;
  let p = 0;
  for (const run of c.runs) {
    const specs: InterventionSpec[] = [
      ...noiseSpecs(run),
      ...cells.map((x): InterventionSpec => ({ hook: `layers.${x.layer}.${k.local}`, positions: [x.pos], op: 'replace', source: { cache: 'clean' } })),
    ];
    const res = await model.run([run.ids], { hooks: interventionHooks(model, specs, { caches: { clean: cache } }), logits: 'last' });
    p += probOf(res.logits!.data, id) / c.runs.length;
  }
  return { p, answerId: id };
}

/** A trace as a long table: kind, layer, pos, token, subject (in the corrupted span), p, ie. */
export function traceTable(results: TraceResult | TraceResult[]): Table {
  const rows: Row[] = [];
  for (const r of Array.isArray(results) ? results : [results]) {
    r.positions.forEach((pos, pi) => r.layers.forEach((layer, li) => rows.push({
      kind: r.kind, layer, pos, token: r.tokens[pos], subject: pos >= r.subjectRange[0] && pos < r.subjectRange[1], p: r.p[pi][li], ie: r.ie[pi][li],
    })));
  }
  return aq.from(rows);
}

/** One row per trace: the fact, answer, p_clean, p_corrupt and status. */
export function traceSummary(results: TraceResult[]): Table {
  return aq.from(results.map((r) => ({
    kind: r.kind, subject: r.subject, altSubject: r.altSubject ?? null, answer: r.answer, high: r.high, low: r.low, status: r.status,
    maxIe: r.status === 'ok' ? Math.max(...r.ie.map((row) => Math.max(...row))) : NaN,
  })));
}
