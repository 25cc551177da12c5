/**
 * Batched sweeps: a grid of patched runs (one row per run, as an arquero
 * table or plain objects) described by intervention specs, run by the row
 * engine (row-engine.ts). Each run's interventions touch only its own batch
 * row; the metric reads that row's logits at its last token. The grid comes
 * back with the metric columns added.
 */
import * as aq from 'arquero';
import type { Model } from './model';
import { FactlensError } from '../errors';
import { InterventionContext, interventionHooks, InterventionSpec } from './interventions';
import type { Tensor } from './tensor';
import { autoBatchSize, EngineRow, runRows } from './row-engine';

export { autoBatchSize, chunkRuns, passCost } from './row-engine';

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
  const prefix = opts.prefix;
  if (prefix?.startPosition && !(model.recurrent ? prefix.state : prefix.past)) {
    throw new FactlensError(`sweep: prefix.startPosition needs prefix.${model.recurrent ? 'state (see mambaStateAt)' : 'past (see kvPastAt)'} for ${model.name}`);
  }
  const carry = model.recurrent ? prefix?.state : prefix?.past;
  const runs = rows.map((row): EngineRow & { row: Row } => ({
    row,
    ids: inputFor(row),
    startLayer: prefix?.startLayer(row),
    startPosition: prefix?.startPosition?.(row),
    resid: prefix ? (l) => prefix.resid(l, row).data : undefined,
    carry: carry ? (l, p) => carry(l, p, row) : undefined,
  }));
  const T = Math.max(...runs.slice(0, 64).map((r) => r.ids.length), 1);
  const results: Row[] = new Array(rows.length);
  await runRows(model, runs, {
    // One hook per hook point for the whole pass (each run's specs touch only its own row).
    hooks: (pass) => interventionHooks(model, pass.rows.flatMap((r, b) => opts.interventions(r.row).map((s) => ({ ...s, rows: [b] }))), { caches: opts.caches }),
    read: (r, i, logits) => (results[i] = { ...r.row, ...opts.metric(logits, r.row) }),
    batchSize: opts.batchSize ?? autoBatchSize(model, T),
    onProgress: opts.onProgress,
    signal: opts.signal,
  });
  return aq.from(results);
}
