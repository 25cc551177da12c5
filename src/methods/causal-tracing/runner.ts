/**
 * The batched restoration runner behind every trace. Exact, and much cheaper than running each
 * (layer, token) cell from scratch:
 *
 * 1. Base runs: the clean prompts (one batch) cache every restorable state; the corrupted prompts
 *    (one batch) cache the residual entering every layer, and for Mamba the per-position SSM state
 *    and conv inputs of every layer.
 * 2. Cells are grouped by (kind, layer): all cells of a group patch the same layers, so only those
 *    layers are cut at a hook. Cells of different facts and positions share a batch.
 * 3. A cell starts at the first layer it patches, from the corrupted residual there (layers below
 *    cannot differ from the corrupted run). The residual kind needs no hook at all: restoring h^l at
 *    token t is starting layer l + 1 from the corrupted residual with token t set to the clean one.
 * 4. A restoration at token t cannot change tokens before t, so the cell runs tokens t..T−1 only,
 *    from the corrupted run's state before token t: Mamba's recurrent state after token t − 1 (SSM
 *    state + the last K − 1 conv inputs; the engine's mambaStateAt), a transformer's keys and values
 *    of tokens 0..t−1 (kvPastAt).
 *
 * The engine's `sweep` (prefix with startLayer/startPosition/state/past) does 3–4 for one grid; this
 * runner also shares batches across prompts with different clean caches, and applies each batch's
 * restorations in one hook per hook point (sweep adds one hook, and one copy of the activation,
 * per row).
 */
import type { Model } from '../../runtime/model';
import type { HookFn, MambaState } from '../../runtime/forward';
import type { ActivationCache } from '../../runtime/cache';
import { mambaStateAt, resumeCacheNames, stackStates } from '../../runtime/resume';
import { KvPast, kvPastAt, kvResumeCacheNames, stackPasts } from '../../runtime/kv-past';
import { bucketed, makeBatch } from '../../runtime/batch';
import { autoBatchSize } from '../../runtime/sweep';
import { Tensor } from '../../runtime/tensor';
import { KindInfo, restoredLayers } from './kinds';

/** One corrupted run: row `row` of a cached base batch. */
export interface BaseRun {
  ids: number[];
  resid: (layer: number) => Float32Array; // [T,D] entering `layer` (layer L: after the last layer)
  cache: ActivationCache; // resumeCacheNames (Mamba) or kvResumeCacheNames (transformers)
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
  const names = model.recurrent ? resumeCacheNames(model) : kvResumeCacheNames(model);
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

/**
 * Runs the cells of one (kind, layer) group and calls `metric` with each cell's next-token logits
 * at the last token. `layer` is the restored layer (residual) or the window centre.
 */
export async function runGroup(
  model: Model, kind: KindInfo, layer: number, window: number, cells: Cell[], runs: BaseRun[], clean: CleanStates[],
  metric: (cell: Cell, logits: Float32Array) => void, opts: RunnerOptions = {},
): Promise<void> {
  const L = model.nLayers;
  const D = model.config.dModel;
  const patched = restoredLayers(kind, layer, window, L);
  const start = kind.windowed ? patched[0] : layer + 1;
  const suffix = opts.suffix !== false;
  // Batches of equal (bucketed) length: a batch runs as long as its longest row.
  const bucket = opts.bucket ?? 4;
  const lengthOf = (c: Cell) => Math.ceil((runs[c.run].ids.length - (suffix ? c.pos : 0)) / bucket) * bucket;
  const byLength = new Map<number, Cell[]>();
  for (const c of cells) {
    const len = lengthOf(c);
    if (!byLength.has(len)) byLength.set(len, []);
    byLength.get(len)!.push(c);
  }
  const batches: Cell[][] = [];
  for (const [len, group] of [...byLength].sort((a, b) => b[0] - a[0])) {
    const bs = opts.batchSize ?? autoBatchSize(model, len);
    for (let i = 0; i < group.length; i += bs) batches.push(group.slice(i, i + bs));
  }
  for (const chunk of batches) {
    const offs = chunk.map((c) => (suffix ? c.pos : 0));
    const batch = bucketed(makeBatch(chunk.map((c, b) => runs[c.run].ids.slice(offs[b])), model.config.vocabSize, model.padId), bucket);
    const { B, T } = batch;
    const resid = new Float32Array(B * T * D); // [B,T,D]
    chunk.forEach((c, b) => {
      const src = runs[c.run].resid(start);
      resid.set(src.subarray(offs[b] * D, batch.lengths[b] * D + offs[b] * D), b * T * D);
      if (!kind.windowed) {
        const at = (b * T + c.pos - offs[b]) * D;
        resid.set(clean[c.clean]('resid_post', layer).subarray(c.pos * D, (c.pos + 1) * D), at);
      }
    });
    const hooks: Array<[string, HookFn]> = kind.windowed ? patched.map((l) => [`layers.${l}.${kind.local}`, restoreHook(chunk, offs, clean, kind.local, l)]) : [];
    const carry = suffix ? stateBefore(model, chunk, offs, runs, start) : {};
    const res = await model.run(batch, { startAt: { layer: start, resid: new Tensor(resid, [B, T, D]) }, ...carry, hooks, logits: 'last', positionOffsets: offs, signal: opts.signal });
    const V = res.logits!.shape[2];
    chunk.forEach((c, b) => metric(c, res.logits!.data.subarray(b * V, (b + 1) * V)));
    opts.onBatch?.(chunk.length);
  }
}

/** Sets each row's restored token to the clean state of `local` at layer `l`. */
function restoreHook(chunk: Cell[], offs: number[], clean: CleanStates[], local: string, l: number): HookFn {
  return (act) => {
    const out = act.clone(); // [B,T,X]
    const T = act.shape[1];
    const X = act.stride(1);
    chunk.forEach((c, b) => out.data.set(clean[c.clean](local, l).subarray(c.pos * X, (c.pos + 1) * X), (b * T + c.pos - offs[b]) * X));
    return out;
  };
}

/** The corrupted run's state before token offs[b] of each row, for layers ≥ start: Mamba's recurrent state, a transformer's keys/values. */
function stateBefore(model: Model, chunk: Cell[], offs: number[], runs: BaseRun[], start: number): { state?: MambaState; past?: KvPast } {
  const base = (b: number) => runs[chunk[b].run];
  if (model.recurrent) return { state: stackStates(chunk.length, start, model.nLayers, (l, b) => mambaStateAt(model, base(b).cache, l, offs[b], base(b).row)) };
  return { past: stackPasts(chunk.length, start, model.nLayers, (l, b) => kvPastAt(model, base(b).cache, l, offs[b], base(b).row)) };
}
