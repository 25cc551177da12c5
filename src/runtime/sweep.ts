/**
 * Batched sweeps: a grid of patched runs (one row per run, as an arquero
 * table or plain objects) is packed into as few forward passes as memory
 * allows. Each run's interventions touch only its own batch row; the metric
 * reads that row's logits at its last token. The grid comes back with the
 * metric columns added.
 */
import { isSsmConfig } from '../models/ssm';
import * as aq from 'arquero';
import type { Model } from './model';
import { makeBatch } from './batch';
import { FactlensError } from '../errors';
import { InterventionContext, interventionHooks, InterventionSpec } from './interventions';
import { Tensor } from './tensor';
import { stackStates } from './resume';
import { stackPasts } from './kv-past';

export type Row = Record<string, unknown>;

export interface SweepOptions {
  /** Token ids for a run (the same prompt for every row if an array). */
  input: number[] | ((row: Row) => number[]);
  /** Interventions of a run; `rows` is filled in by the sweep. */
  interventions: (row: Row) => InterventionSpec[];
  /** Metric columns from the run's next-token logits [V]. */
  metric: (logits: Float32Array, row: Row) => Record<string, number>;
  caches?: InterventionContext['caches'];
  /** Runs per forward pass; default from a memory budget (see autoBatchSize). */
  batchSize?: number;
  /**
   * Skip what a run cannot change. A run whose interventions all sit at
   * layers ≥ startLayer(row) starts there from `resid(layer, row)`, the [1,T,D]
   * residual entering that layer in an unpatched run of the same input.
   * With startPosition(row) the run also skips the positions before it
   * (causality), resuming from the unpatched run's `state(layer, position,
   * row)` (state-space models: resume.ts, mambaStateAt) or `past(layer,
   * position, row)` (transformers: kv-past.ts, kvPastAt). Results come back in grid order.
   */
  prefix?: {
    startLayer: (row: Row) => number;
    resid: (layer: number, row: Row) => Tensor;
    startPosition?: (row: Row) => number;
    state?: (layer: number, position: number, row: Row) => { conv: Tensor; ssm: Tensor };
    past?: (layer: number, position: number, row: Row) => { k: Tensor; v: Tensor };
  };
  onProgress?: (done: number, total: number) => void;
  /** Stops the sweep before its next batch (abort.ts). */
  signal?: AbortSignal;
}

type Table = ReturnType<typeof aq.from>;

export async function sweep(model: Model, grid: Table | Row[], opts: SweepOptions): Promise<Table> {
  const rows: Row[] = Array.isArray(grid) ? grid : (grid.objects() as Row[]);
  const inputFor = typeof opts.input === 'function' ? opts.input : () => opts.input as number[];
  const T = Math.max(...rows.slice(0, 64).map((r) => inputFor(r).length), 1);
  const bs = opts.batchSize ?? autoBatchSize(model, T);
  const results: Row[] = new Array(rows.length);
  const starts = rows.map((r) => opts.prefix?.startLayer(r) ?? 0);
  const prefix = opts.prefix;
  if (prefix?.startPosition && !(model.recurrent ? prefix.state : prefix.past)) {
    throw new FactlensError(`sweep: prefix.startPosition needs prefix.${model.recurrent ? 'state (see mambaStateAt)' : 'past (see kvPastAt)'} for ${model.name}`);
  }
  const positions = rows.map((r) => prefix?.startPosition?.(r) ?? 0);
  const lengths = rows.map((r) => inputFor(r).length);
  let done = 0;
  for (const idx of chunkRuns(model.nLayers, starts, positions, lengths, bs)) {
    const chunk = idx.map((i) => rows[i]);
    const layer0 = Math.min(...idx.map((i) => starts[i]));
    const pos = idx.map((i) => positions[i]);
    const batch = makeBatch(chunk.map((r, b) => inputFor(r).slice(pos[b])), model.config.vocabSize, model.padId);
    // One hook per hook point for the whole pass (each run's specs touch only its own row).
    const specs = chunk.flatMap((row, b) => opts.interventions(row).map((s) => ({ ...s, rows: [b] })));
    const hooks = interventionHooks(model, specs, { caches: opts.caches });
    const resumed = prefix && (layer0 > 0 || pos.some((p) => p > 0));
    const mid = resumed && pos.some((p) => p > 0); // some row skips positions: it needs the state or keys/values before them
    const res = await model.run(batch, {
      hooks,
      logits: 'last',
      startAt: resumed ? { layer: layer0, resid: suffixRows(chunk.map((r) => prefix.resid(layer0, r)), pos, batch.T) } : undefined,
      state: mid && prefix.state ? stackStates(chunk.length, layer0, model.nLayers, (l, b) => prefix.state!(l, pos[b], chunk[b])) : undefined,
      past: mid && prefix.past ? stackPasts(chunk.length, layer0, model.nLayers, (l, b) => prefix.past!(l, pos[b], chunk[b])) : undefined,
      positionOffsets: pos,
      signal: opts.signal,
    });
    const V = res.logits!.shape[2];
    chunk.forEach((row, b) => (results[idx[b]] = { ...row, ...opts.metric(res.logits!.data.subarray(b * V, (b + 1) * V), row) }));
    opts.onProgress?.((done += idx.length), rows.length);
  }
  return aq.from(results);
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
 * Group runs into forward passes. A pass computes layers from its lowest start layer and tokens
 * from its earliest start position for every row, so its cost is (L − layer0) × (overhead +
 * rows × tokens). Runs are ordered by (start position, start layer) and cut into contiguous passes
 * of at most `bs` rows that minimise the total cost (dynamic programming over the cut points).
 */
export function chunkRuns(L: number, starts: number[], positions: number[], lengths: number[], bs: number): number[][] {
  const order = [...starts.keys()].sort((a, b) => positions[a] - positions[b] || starts[a] - starts[b]);
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
      tMax = Math.max(tMax, lengths[r] - positions[r]);
      const cost = best[j] + passCost(L, layer0, i - j, tMax);
      if (cost < best[i]) {
        best[i] = cost;
        cut[i] = j;
      }
    }
  }
  const chunks: number[][] = [];
  for (let i = n; i > 0; i = cut[i]) chunks.unshift(order.slice(cut[i], i));
  return chunks;
}

/** Row b's [1,T,D] residual from position positions[b] on, right-padded with zeros to T' tokens: [B,T',D]. */
function suffixRows(resids: Tensor[], positions: number[], Tp: number): Tensor {
  const D = resids[0].shape[2];
  const out = new Float32Array(resids.length * Tp * D); // [B,T',D]
  resids.forEach((r, b) => {
    const n = Math.min(Tp, r.shape[1] - positions[b]);
    out.set(r.data.subarray(positions[b] * D, (positions[b] + n) * D), b * Tp * D);
  });
  return new Tensor(out, [resids.length, Tp, D]);
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
