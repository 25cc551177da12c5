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
import { HookFn } from './forward';
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
   * Skip the layers a run cannot change: a run whose interventions all sit at
   * layers ≥ startLayer(row) starts there from `resid(layer)`, the [1,T,D]
   * residual entering that layer in an unpatched run of the same input.
   * Rows are grouped by start layer; results come back in grid order.
   */
  prefix?: { startLayer: (row: Row) => number; resid: (layer: number) => Tensor };
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
  const order = [...rows.keys()].sort((a, b) => starts[a] - starts[b]);
  for (let start = 0; start < rows.length; start += bs) {
    const idx = order.slice(start, start + bs);
    const chunk = idx.map((i) => rows[i]);
    const batch = makeBatch(chunk.map(inputFor), model.config.vocabSize, model.padId);
    const layer0 = Math.min(...idx.map((i) => starts[i]));
    const hooks: Array<[string, HookFn]> = [];
    chunk.forEach((row, b) => {
      const specs = opts.interventions(row).map((s) => ({ ...s, rows: [b] }));
      hooks.push(...interventionHooks(model, specs, { caches: opts.caches }));
    });
    const startAt = opts.prefix && layer0 > 0 ? { layer: layer0, resid: repeatRows(opts.prefix.resid(layer0), batch.B) } : undefined;
    const res = await model.run(batch, { hooks, logits: 'last', startAt });
    const V = res.logits!.shape[2];
    chunk.forEach((row, b) => (results[idx[b]] = { ...row, ...opts.metric(res.logits!.data.subarray(b * V, (b + 1) * V), row) }));
    opts.onProgress?.(Math.min(start + bs, rows.length), rows.length);
  }
  return aq.from(results);
}

/** A [1,...] tensor repeated into [B,...]. */
function repeatRows(t: Tensor, B: number): Tensor {
  const out = new Float32Array(t.size * B);
  for (let b = 0; b < B; b++) out.set(t.data, b * t.size);
  return new Tensor(out, [B, ...t.shape.slice(1)]);
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
