/**
 * The batched restoration runner behind every trace. Exact, and much cheaper than running each
 * (layer, token) cell from scratch:
 *
 * 1. Base runs: the clean prompts (one batch) cache every restorable state; the corrupted prompts
 *    (one batch) cache the residual entering every layer and what resumes them mid-sequence (Mamba's
 *    per-position SSM state and conv inputs, a transformer's keys and values).
 * 2. Cells are grouped by (kind, layer): all cells of a group patch the same layers, so only those
 *    layers are cut at a hook. Cells of different facts and positions share a batch.
 * 3. A cell starts at the first layer it patches, from the corrupted residual there (layers below
 *    cannot differ from the corrupted run). The residual kind needs no hook at all: restoring h^l at
 *    token t is starting layer l + 1 from the corrupted residual with token t set to the clean one.
 * 4. A restoration at token t cannot change tokens before t, so the cell runs tokens t..T−1 only,
 *    from the corrupted run's state before token t: Mamba's recurrent state after token t − 1, a
 *    transformer's keys and values of tokens 0..t−1.
 *
 * The row engine (runtime/row-engine.ts) does 3–4 and the packing; this file says what a cell
 * restores, in one hook per hook point per pass.
 */
import type { Model } from '../../runtime/model';
import type { HookFn } from '../../runtime/forward';
import type { ActivationCache } from '../../runtime/cache';
import { carryAt, carryCacheNames, EngineRow, RowPass, runRows } from '../../runtime/row-engine';
import { Tensor } from '../../runtime/tensor';
import { KindInfo, restoredLayers } from './kinds';

/** One corrupted run: row `row` of a cached base batch. */
export interface BaseRun {
  ids: number[];
  resid: (layer: number) => Float32Array; // [T,D] entering `layer` (layer L: after the last layer)
  cache: ActivationCache; // carryCacheNames: what resumes the run at any layer and position
  row: number;
}

/** One clean run's restorable states: [T,X] for `local` at `layer`. */
export type CleanStates = (local: string, layer: number) => Float32Array;

export interface Cell {
  run: number; // index into the base runs
  clean: number; // index into the clean runs
  pos: number;
  out: number; // where the result goes
}

export interface RunnerOptions {
  batchSize?: number;
  /** Run only tokens t..T−1, from the recurrent state (Mamba) or the keys/values before t (default true; exact). */
  suffix?: boolean;
  /** Pad batches to a multiple of this many tokens (default 4): fewer distinct lengths to compile. */
  bucket?: number;
  onBatch?: (cells: number) => void;
  /** Stops before the next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

/** Row b of a [B,T,...] tensor as a [len,...] view. */
export function rowView(t: Tensor, b: number, len: number): Float32Array {
  const w = t.stride(1);
  const T = t.shape[1];
  return t.data.subarray(b * T * w, (b * T + len) * w);
}

/** Corrupted runs, batched: logits at the last token and the cached tensors of every row. */
export async function baseRuns(model: Model, rows: number[][], hooks?: Array<[string, HookFn]>): Promise<{ runs: BaseRun[]; logits: Float32Array[] }> {
  const L = model.nLayers;
  const names = carryCacheNames(model);
  const res = await model.run(rows, { cache: names, hooks, logits: 'last' });
  const V = res.logits!.shape[2];
  const runs = rows.map((ids, b): BaseRun => ({
    ids,
    resid: (l) => rowView(l === L ? res.residual : res.cache.get(`layers.${l}.resid_pre`), b, ids.length),
    cache: res.cache,
    row: b,
  }));
  return { runs, logits: rows.map((_, b) => res.logits!.data.subarray(b * V, (b + 1) * V)) };
}

/** Clean runs, batched: logits at the last token and the states of `locals` at `layers`. */
export async function cleanRuns(model: Model, rows: number[][], locals: string[], layers: number[]): Promise<{ states: CleanStates[]; logits: Float32Array[] }> {
  const names = layers.flatMap((l) => locals.map((k) => `layers.${l}.${k}`));
  const res = await model.run(rows, { cache: names, logits: 'last' });
  const V = res.logits!.shape[2];
  return {
    states: rows.map((ids, b) => (local: string, l: number) => rowView(res.cache.get(`layers.${l}.${local}`), b, ids.length)),
    logits: rows.map((_, b) => res.logits!.data.subarray(b * V, (b + 1) * V)),
  };
}

/** A cell of one kind at one layer: the restored layer (residual) or the window centre. */
export interface KindCell extends Cell {
  layer: number;
}

type CellRow = EngineRow & { cell: KindCell; patched: number[] };

/**
 * Runs the cells of one kind (any layers) on the row engine and calls `metric` with each cell's
 * next-token logits at the last token. Cells of different layers share passes: each pass restores
 * each of its rows at that row's layers, in one hook per hook point.
 */
export async function runKind(
  model: Model, kind: KindInfo, window: number, cells: KindCell[], runs: BaseRun[], clean: CleanStates[],
  metric: (cell: KindCell, logits: Float32Array) => void, opts: RunnerOptions = {},
): Promise<void> {
  const D = model.config.dModel;
  const rows = cells.map((cell): CellRow => {
    const base = runs[cell.run];
    const patched = restoredLayers(kind, cell.layer, window, model.nLayers);
    // The residual kind starts at layer + 1 from the corrupted residual with the cell's token clean (no
    // hook); a pass that starts lower restores it with the hook below instead.
    const start = kind.windowed ? patched[0] : cell.layer + 1;
    return {
      cell,
      patched,
      ids: base.ids,
      startLayer: start,
      startPosition: opts.suffix !== false ? cell.pos : 0,
      resid: kind.windowed ? base.resid : (l) => (l === start ? withToken(base.resid(l), clean[cell.clean]('resid_post', cell.layer), cell.pos, D) : base.resid(l)),
      carry: (l, p) => carryAt(model, base.cache, l, p, base.row),
    };
  });
  let reported = 0;
  await runRows(model, rows, {
    hooks: (pass) => restoreHooks(pass, kind.local, clean),
    read: (r, _i, logits) => metric(r.cell, logits),
    batchSize: opts.batchSize,
    bucket: opts.bucket ?? 4,
    onProgress: (done) => {
      opts.onBatch?.(done - reported);
      reported = done;
    },
    signal: opts.signal,
  });
}

/** One hook per restored layer of the pass: sets each row's token to the clean state of `local` there, for the rows that restore that layer. */
function restoreHooks(pass: RowPass<CellRow>, local: string, clean: CleanStates[]): Array<[string, HookFn]> {
  const rowsAt = new Map<number, number[]>(); // layer → pass rows restored there
  pass.rows.forEach((r, b) => r.patched.forEach((l) => (rowsAt.get(l) ?? rowsAt.set(l, []).get(l)!).push(b)));
  return [...rowsAt].map(([l, bs]): [string, HookFn] => [`layers.${l}.${local}`, (act) => {
    const out = act.clone(); // [B,T,X]
    const T = act.shape[1];
    const X = act.stride(1);
    for (const b of bs) {
      const { cell } = pass.rows[b];
      out.data.set(clean[cell.clean](local, l).subarray(cell.pos * X, (cell.pos + 1) * X), (b * T + cell.pos - pass.at[b].offset) * X);
    }
    return out;
  }]);
}

/** A copy of a [T·D] residual with token `pos` taken from `states` [T·D] (the clean run's residual there). */
function withToken(resid: Float32Array, states: Float32Array, pos: number, D: number): Float32Array {
  const out = resid.slice(); // [T·D]
  out.set(states.subarray(pos * D, (pos + 1) * D), pos * D);
  return out;
}
