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
  onProgress?: (done: number, total: number) => void;
}

type Table = ReturnType<typeof aq.from>;

export async function sweep(model: Model, grid: Table | Row[], opts: SweepOptions): Promise<Table> {
  const rows: Row[] = Array.isArray(grid) ? grid : (grid.objects() as Row[]);
  const inputFor = typeof opts.input === 'function' ? opts.input : () => opts.input as number[];
  const T = Math.max(...rows.slice(0, 64).map((r) => inputFor(r).length), 1);
  const bs = opts.batchSize ?? autoBatchSize(model, T);
  const results: Row[] = [];
  for (let start = 0; start < rows.length; start += bs) {
    const chunk = rows.slice(start, start + bs);
    const batch = makeBatch(chunk.map(inputFor), model.config.vocabSize, model.padId);
    const hooks: Array<[string, HookFn]> = [];
    chunk.forEach((row, b) => {
      const specs = opts.interventions(row).map((s) => ({ ...s, rows: [b] }));
      hooks.push(...interventionHooks(model, specs, { caches: opts.caches }));
    });
    const res = await model.run(batch, { hooks, logits: 'last' });
    const V = res.logits!.shape[2];
    chunk.forEach((row, b) => results.push({ ...row, ...opts.metric(res.logits!.data.subarray(b * V, (b + 1) * V), row) }));
    opts.onProgress?.(Math.min(start + bs, rows.length), rows.length);
  }
  return aq.from(results);
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
