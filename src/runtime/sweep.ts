/**
 * Batched sweeps: a grid of patched runs (one row per run, as an arquero
 * table or plain objects) is packed into as few forward passes as memory
 * allows. Each run's interventions touch only its own batch row; the metric
 * reads that row's logits at its last token. The grid comes back with the
 * metric columns added.
 */
import * as aq from 'arquero';
import type { Model } from './model';
import { makeBatch } from './batch';
import { MambaState } from './forward';
import { FactlensError } from '../errors';
import { InterventionContext, interventionHooks, InterventionSpec } from './interventions';
import { Tensor } from './tensor';

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
   * Mamba only: with startPosition(row) the run also skips the positions
   * before it (causality), resuming from `state(layer, position, row)` — see
   * resume.ts (mambaStateAt). Results come back in grid order.
   */
  prefix?: {
    startLayer: (row: Row) => number;
    resid: (layer: number, row: Row) => Tensor;
    startPosition?: (row: Row) => number;
    state?: (layer: number, position: number, row: Row) => { conv: Tensor; ssm: Tensor };
  };
  onProgress?: (done: number, total: number) => void;
}

type Table = ReturnType<typeof aq.from>;

export async function sweep(model: Model, grid: Table | Row[], opts: SweepOptions): Promise<Table> {
  const rows: Row[] = Array.isArray(grid) ? grid : (grid.objects() as Row[]);
  const inputFor = typeof opts.input === 'function' ? opts.input : () => opts.input as number[];
  const T = Math.max(...rows.slice(0, 64).map((r) => inputFor(r).length), 1);
  const bs = opts.batchSize ?? autoBatchSize(model, T);
  const results: Row[] = new Array(rows.length);
  const starts = rows.map((r) => opts.prefix?.startLayer(r) ?? 0);
  const positions = rows.map((r) => (opts.prefix?.startPosition && model.arch === 'mamba' ? opts.prefix.startPosition(r) : 0));
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
    const resumed = opts.prefix && (layer0 > 0 || pos.some((p) => p > 0));
    const res = await model.run(batch, {
      hooks,
      logits: 'last',
      startAt: resumed ? { layer: layer0, resid: suffixRows(chunk.map((r) => opts.prefix!.resid(layer0, r)), pos, batch.T) } : undefined,
      state: resumed && pos.some((p) => p > 0) ? stackStates(model, layer0, chunk, pos, opts.prefix!) : undefined,
      positionOffsets: pos,
    });
    const V = res.logits!.shape[2];
    chunk.forEach((row, b) => (results[idx[b]] = { ...row, ...opts.metric(res.logits!.data.subarray(b * V, (b + 1) * V), row) }));
    opts.onProgress?.((done += idx.length), rows.length);
  }
  return aq.from(results);
}

/** Below this share of useful work a chunk is closed early (see chunkRuns). */
const MIN_EFFICIENCY = 0.7;
/** ...but never below this many runs, so small batches don't multiply the per-pass overhead. */
const MIN_CHUNK = 8;

/**
 * Group runs into forward passes. A pass computes layers from its lowest
 * start layer and tokens from its earliest start position for every row;
 * runs are ordered by (start position, start layer) and a pass is closed when
 * the useful share of its work would fall below MIN_EFFICIENCY (or it is full).
 */
export function chunkRuns(L: number, starts: number[], positions: number[], lengths: number[], bs: number): number[][] {
  const order = [...starts.keys()].sort((a, b) => positions[a] - positions[b] || starts[a] - starts[b]);
  const own = (i: number) => (L - starts[i]) * (lengths[i] - positions[i]);
  const chunks: number[][] = [];
  let cur: number[] = [];
  let useful = 0;
  for (const i of order) {
    if (cur.length) {
      const rowsAfter = cur.length + 1;
      const layer0 = Math.min(starts[i], ...cur.map((j) => starts[j]));
      const tMax = Math.max(lengths[i] - positions[i], ...cur.map((j) => lengths[j] - positions[j]));
      const efficiency = (useful + own(i)) / (rowsAfter * (L - layer0) * tMax);
      if (cur.length >= bs || (cur.length >= MIN_CHUNK && efficiency < MIN_EFFICIENCY)) {
        chunks.push(cur);
        cur = [];
        useful = 0;
      }
    }
    cur.push(i);
    useful += own(i);
  }
  if (cur.length) chunks.push(cur);
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

/** The recurrent state entering each row's start position, for every layer from layer0 on. */
function stackStates(model: Model, layer0: number, chunk: Row[], positions: number[], prefix: NonNullable<SweepOptions['prefix']>): MambaState {
  if (!prefix.state) throw new FactlensError('sweep: prefix.startPosition needs prefix.state (see mambaStateAt)');
  const state: MambaState = { conv: [], ssm: [] };
  for (let l = layer0; l < model.nLayers; l++) {
    const parts = chunk.map((r, b) => prefix.state!(l, positions[b], r));
    state.conv[l] = stackRows(parts.map((p) => p.conv));
    state.ssm[l] = stackRows(parts.map((p) => p.ssm));
  }
  return state;
}

function stackRows(ts: Tensor[]): Tensor {
  const out = new Float32Array(ts.length * ts[0].size);
  ts.forEach((t, b) => out.set(t.data, b * t.size));
  return new Tensor(out, [ts.length, ...ts[0].shape.slice(1)]);
}

/**
 * Rows per forward pass under a memory budget (FACTLENS_BATCH_MB, default
 * 1024 MB) from a per-row estimate of the transient activations of one layer.
 */
export function autoBatchSize(model: Model, T: number): number {
  const budget = Number(process.env.FACTLENS_BATCH_MB ?? 1024) * 2 ** 20;
  const c = model.config;
  const floatsPerRow = c.arch === 'mamba'
    ? T * (8 * c.dModel + 16 * c.dInner + 3 * c.dInner * c.dState) + 2 * c.dInner * c.dState
    : T * (12 * c.dModel + 3 * c.dFF + 3 * c.nHead * T);
  const logits = c.vocabSize; // one row of logits per run
  return Math.max(1, Math.min(256, Math.floor(budget / (4 * (floatsPerRow + logits)))));
}
