/**
 * The batched-run engine under every method that runs many edited copies of prompts: sweeps,
 * causal tracing's restorations, knockout and path restoration. Each row is one run with its own
 * tokens; the engine
 *   - skips what a row cannot change: layers below its startLayer (it starts from `resid`, the
 *     residual of an unedited run there) and positions before its startPosition (it resumes from
 *     `carry`: Mamba's recurrent state, resume.ts, or a transformer's keys/values, kv-past.ts);
 *   - packs rows into forward passes with a cost model (chunkRuns) under a memory budget
 *     (autoBatchSize);
 *   - asks the method for the batch's hooks once per pass (one hook per hook point, however many
 *     rows edit it), and hands each row its next-token logits at its last token.
 * Exact: a row's numbers are those of its full run.
 */
import { isSsmConfig, ssmLayout } from '../models/ssm';
import { FactlensError } from '../errors';
import { Batch, bucketed, makeBatch } from './batch';
import type { HookFn } from './forward';
import type { Model } from './model';
import { Tensor } from './tensor';
import { mambaStateAt, resumeCacheNames, stackStates } from './resume';
import { KvPast, kvPastAt, kvResumeCacheNames, stackPasts } from './kv-past';
import type { ActivationCache } from './cache';

/** What a run carries across positions, before a given position at one layer: [1,...] tensors. */
export type Carry = { conv: Tensor; ssm: Tensor } | { k: Tensor; v: Tensor };

export interface EngineRow {
  ids: number[];
  /** First layer the row's edits touch (default 0). */
  startLayer?: number;
  /** First position the row's edits touch (default 0): earlier positions are not recomputed. */
  startPosition?: number;
  /**
   * The residual [T·D] entering `layer` in an unedited run of `ids` (needed when startLayer or
   * startPosition > 0). A row may return it with its own edit already applied at the start layer.
   */
  resid?: (layer: number) => Float32Array;
  /** The unedited run's carry before `position` at `layer` (needed when startPosition > 0). */
  carry?: (layer: number, position: number) => Carry;
}

/** Cache names an unedited run must keep so that carryAt can resume it at any layer and position. */
export function carryCacheNames(model: Model): string[] {
  return model.recurrent ? resumeCacheNames(model) : kvResumeCacheNames(model);
}

/** The carry before `position` at `layer` of row `row` of a cached run (kept with carryCacheNames). */
export function carryAt(model: Model, cache: ActivationCache, layer: number, position: number, row = 0): Carry {
  return model.recurrent ? mambaStateAt(model, cache, layer, position, row) : kvPastAt(model, cache, layer, position, row);
}

/** Where a row's computed tokens sit: positions start at `offset`; attention keys have `pastSlots` cached slots first. */
export interface RowOffset {
  offset: number;
  pastSlots: number;
}

/** Index on an attention key axis of the key at absolute position `key` (cached slots first, then the row's tokens). */
export const keyIndex = (key: number, at: RowOffset) => (key < at.offset ? key : at.pastSlots + key - at.offset);

/** One forward pass: its rows (in pass order), their indices in the input, where each starts, and the token batch. */
export interface RowPass<R> {
  rows: R[];
  index: number[];
  at: RowOffset[];
  batch: Batch;
}

export interface RunRowsOptions<R> {
  /** The pass's hooks (each row's edits touch only its own batch row). */
  hooks?: (pass: RowPass<R>) => Array<[string, HookFn]>;
  /** Each row's next-token logits [V] at its last token (a view: copy what you keep). */
  read: (row: R, index: number, logits: Float32Array) => void;
  /** Rows per pass (default: autoBatchSize at the longest run). */
  batchSize?: number;
  /** Pad passes to a multiple of this many tokens (default 1): fewer distinct lengths to compile. */
  bucket?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops before the next pass (abort.ts). */
  signal?: AbortSignal;
}

export async function runRows<R extends EngineRow>(model: Model, rows: R[], opts: RunRowsOptions<R>): Promise<void> {
  if (!rows.length) return;
  const L = model.nLayers;
  const D = model.config.dModel;
  const starts = rows.map((r) => r.startLayer ?? 0);
  const positions = rows.map((r) => r.startPosition ?? 0);
  rows.forEach((r, i) => {
    if (starts[i] < 0 || starts[i] > L) throw new FactlensError(`row ${i}: startLayer ${starts[i]} is out of range 0..${L}`);
    if (positions[i] < 0 || positions[i] >= r.ids.length) throw new FactlensError(`row ${i}: startPosition ${positions[i]} is out of range 0..${r.ids.length - 1}`);
    if ((starts[i] > 0 || positions[i] > 0) && !r.resid) throw new FactlensError(`row ${i}: startLayer ${starts[i]} / startPosition ${positions[i]} needs the row's resid`);
    if (positions[i] > 0 && !r.carry) throw new FactlensError(`row ${i}: startPosition ${positions[i]} needs the row's carry (${model.recurrent ? 'mambaStateAt' : 'kvPastAt'})`);
  });
  const lengths = rows.map((r) => r.ids.length);
  const bs = opts.batchSize ?? autoBatchSize(model, Math.max(...lengths.map((n, i) => n - positions[i])));
  let done = 0;
  const bucket = opts.bucket ?? 1;
  for (const index of chunkRuns(L, starts, positions, lengths, bs, bucket)) {
    const pass = index.map((i) => rows[i]);
    const offs = index.map((i) => positions[i]);
    const layer0 = Math.min(...index.map((i) => starts[i]));
    const batch = bucketed(makeBatch(pass.map((r, b) => r.ids.slice(offs[b])), model.config.vocabSize, model.padId), bucket);
    const { B, T } = batch;
    let startAt: { layer: number; resid: Tensor } | undefined;
    if (layer0 > 0 || offs.some((o) => o > 0)) {
      const resid = new Float32Array(B * T * D); // [B,T,D]; padding stays 0 (never read by real positions)
      pass.forEach((r, b) => {
        const full = r.resid!(layer0); // [T_r·D]
        if (full.length !== r.ids.length * D) throw new FactlensError(`row ${index[b]}: resid at layer ${layer0} has ${full.length} values, expected ${r.ids.length}×${D}`);
        resid.set(full.subarray(offs[b] * D), b * T * D);
      });
      startAt = { layer: layer0, resid: new Tensor(resid, [B, T, D]) };
    }
    const carried = offs.some((o) => o > 0) ? stackCarries(model, pass, offs, layer0) : {};
    const pastSlots = carried.past ? carried.past.k[layer0]?.shape[2] ?? 0 : 0;
    const at = offs.map((offset): RowOffset => ({ offset, pastSlots }));
    const res = await model.run(batch, { hooks: opts.hooks?.({ rows: pass, index, at, batch }), logits: 'last', startAt, ...carried, positionOffsets: offs, signal: opts.signal });
    const V = res.logits!.shape[2];
    pass.forEach((r, b) => opts.read(r, index[b], res.logits!.data.subarray(b * V, (b + 1) * V)));
    opts.onProgress?.((done += index.length), rows.length);
  }
}

/** The pass's carries for layers ≥ layer0, stacked: rows that start at position 0 get an empty one. */
function stackCarries(model: Model, pass: EngineRow[], offs: number[], layer0: number): { state?: ReturnType<typeof stackStates>; past?: KvPast } {
  const carryOf = (l: number, b: number) => (offs[b] > 0 ? pass[b].carry!(l, offs[b]) : emptyCarry(model));
  if (model.recurrent) return { state: stackStates(pass.length, layer0, model.nLayers, (l, b) => carryOf(l, b) as { conv: Tensor; ssm: Tensor }) };
  return { past: stackPasts(pass.length, layer0, model.nLayers, (l, b) => carryOf(l, b) as { k: Tensor; v: Tensor }) };
}

/** The carry before position 0: a zero state (SSMs) or no keys/values (transformers). */
function emptyCarry(model: Model): Carry {
  const c = model.config;
  if (isSsmConfig(c)) {
    const { dInner: E, dState: N, convKernel: K, convWidth } = ssmLayout(c)!;
    return { conv: Tensor.zeros([1, K - 1, convWidth]), ssm: Tensor.zeros([1, E, N]) };
  }
  const none = new Tensor(new Float32Array(0), [1, model.headsAt('attn.k'), 0, c.headDim]); // [1,Hkv,0,Dh]
  return { k: none, v: none };
}

/**
 * The fixed cost of running one layer of a forward pass, in row-tokens of work: measured on
 * mamba-facts, a one-row 12-token forward costs 1.56 ms per layer and a 192-row one 37 µs per
 * row-token per layer, so a layer call costs about as much as 40 row-tokens on top of its work.
 */
const LAYER_CALL_ROW_TOKENS = 40;

/** Cost in row-tokens of a pass of `rows` rows × `tokens` tokens through layers layer0..L−1. */
export function passCost(L: number, layer0: number, rows: number, tokens: number): number {
  return (L - layer0) * (LAYER_CALL_ROW_TOKENS + rows * tokens);
}

/**
 * Group runs into forward passes. A pass computes layers from its lowest start layer for every
 * row, and as many tokens as its longest run from its start position, so its cost is
 * (L − layer0) × (overhead + rows × tokens). Runs are put in an order and cut into contiguous passes of at most `bs` rows that
 * minimise the total cost (dynamic programming over the cut points). Since each row runs from its
 * own position, what matters is its token count (length − position), not the position: two orders
 * are tried, by (tokens, start layer) and by (start layer, tokens), and the cheaper cover is kept
 * (runs that differ in both, a grid of layers × positions, pack well in only one of them).
 */
export function chunkRuns(L: number, starts: number[], positions: number[], lengths: number[], bs: number, bucket = 1): number[][] {
  const tokens = starts.map((_, i) => lengths[i] - positions[i]); // what a run computes: rows resume at their own positions
  const byTokens = [...starts.keys()].sort((a, b) => tokens[a] - tokens[b] || starts[a] - starts[b]);
  const byLayer = [...starts.keys()].sort((a, b) => starts[a] - starts[b] || tokens[a] - tokens[b]);
  const [t, l] = [byTokens, byLayer].map((order) => bestCover(L, order, starts, positions, lengths, bs, bucket));
  return t.cost <= l.cost ? t.chunks : l.chunks;
}

/** The cheapest cut of `order` into contiguous passes of at most `bs` runs, and its cost. */
function bestCover(L: number, order: number[], starts: number[], positions: number[], lengths: number[], bs: number, bucket: number): { chunks: number[][]; cost: number } {
  const n = order.length;
  const best = new Float64Array(n + 1).fill(Infinity); // best[i]: cheapest cover of order[0..i)
  const cut = new Int32Array(n + 1); // cut[i]: where the last pass of that cover starts
  best[0] = 0;
  for (let i = 1; i <= n; i++) {
    let layer0 = L;
    let tMax = 0;
    for (let j = i - 1; j >= Math.max(0, i - bs); j--) {
      const r = order[j];
      layer0 = Math.min(layer0, starts[r]);
      tMax = Math.max(tMax, lengths[r] - positions[r]); // each row runs from its own position
      const cost = best[j] + passCost(L, layer0, i - j, Math.ceil(tMax / bucket) * bucket); // the pass is padded to the bucket
      if (cost < best[i]) {
        best[i] = cost;
        cut[i] = j;
      }
    }
  }
  const chunks: number[][] = [];
  for (let i = n; i > 0; i = cut[i]) chunks.unshift(order.slice(cut[i], i));
  return { chunks, cost: best[n] };
}

/**
 * Rows per forward pass under a memory budget (FACTLENS_BATCH_MB, default
 * 1024 MB) from a per-row estimate of the transient activations of one layer.
 */
export function autoBatchSize(model: Model, T: number): number {
  const budget = Number(process.env.FACTLENS_BATCH_MB ?? 1024) * 2 ** 20;
  const c = model.config;
  const floatsPerRow = isSsmConfig(c)
    ? T * (8 * c.dModel + 16 * c.dInner + 3 * c.dInner * c.dState) + 2 * c.dInner * c.dState // Mamba-2: the same scan state per channel
    : T * (12 * c.dModel + 3 * c.dFF + 3 * c.nHead * T);
  const logits = c.vocabSize; // one row of logits per run
  return Math.max(1, Math.min(256, Math.floor(budget / (4 * (floatsPerRow + logits)))));
}
