/**
 * Many edited runs, batched: each variant is one batch row with its own tokens, its own position-wise
 * edits (any hook, any positions) and its own path blocks, and reads p(target) at its last token.
 * Variants are grouped by the first layer they edit; a group skips the layers before it by starting
 * from each row's residual stream of an unedited run of the same tokens (exact: nothing before the
 * first edit differs). Used by the knockout and path-restoration experiments.
 */
import { FactlensError } from '../../errors';
import type { HookFn } from '../../runtime/forward';
import type { Model } from '../../runtime/model';
import { makeBatch } from '../../runtime/batch';
import { autoBatchSize } from '../../runtime/sweep';
import { Tensor } from '../../runtime/tensor';
import { logitsAt, probOf } from '../../runtime/logits';
import { PathBlock, pathBlockingHooks } from './path-blocking';
import { KvPast, kvPastAt, kvResumeCacheNames, stackPasts } from '../../runtime/kv-past';

/**
 * An in-place edit of one row's activation at a hook; `view` has the hook's shape without the batch
 * axis. In a resumed row (Variant.resume) the position axis starts at `at.offset`, and attention
 * scores/patterns have `at.pastSlots` cached keys before the row's own (kv-past.ts).
 */
export interface RowEdit {
  hook: string;
  apply: (view: Float32Array, shape: number[], at: RowOffset) => void;
}

export interface RowOffset {
  offset: number; // absolute position of the row's first computed token
  pastSlots: number; // cached key slots before the row's tokens (0 in a full run)
}

/** Index on an attention key axis of the key at absolute position `key` (cached slots first, then the row's tokens). */
export const keyIndex = (key: number, at: RowOffset) => (key < at.offset ? key : at.pastSlots + key - at.offset);

export interface Variant {
  ids: number[];
  /** Token whose probability is read at the last position. */
  target: number;
  edits?: RowEdit[];
  blocks?: Array<Omit<PathBlock, 'rows'>>;
  /** First layer any edit or block touches (default 0: run every layer). */
  startLayer?: number;
  /** The residual stream [T·D] entering `layer` in an unedited run of `ids` (needed when startLayer > 0). */
  prefix?: (layer: number) => Float32Array;
  /**
   * Transformers: nothing before token `position` changes, so the row runs tokens position.. only,
   * from the keys/values [1,Hkv,position,Dh] of an unedited run at each layer ≥ startLayer (kvPastAt).
   */
  resume?: { position: number; past: (layer: number) => { k: Tensor; v: Tensor } };
}

export interface RunVariantsOptions {
  /** Rows per forward pass (default: a memory budget, at most 64). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops before the next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

/** p(target) at each variant's last token, in input order. */
export async function runVariants(model: Model, variants: Variant[], opts: RunVariantsOptions = {}): Promise<Float64Array> {
  const out = new Float64Array(variants.length);
  if (!variants.length) return out;
  const D = model.config.dModel;
  const starts = variants.map((v) => v.startLayer ?? 0);
  starts.forEach((s, i) => {
    if (s < 0 || s > model.nLayers) throw new FactlensError(`variant ${i}: startLayer ${s} is out of range 0..${model.nLayers}`);
    if (s > 0 && !variants[i].prefix) throw new FactlensError(`variant ${i}: startLayer ${s} needs a prefix residual`);
  });
  const order = [...variants.keys()].sort((a, b) => starts[a] - starts[b] || variants[a].ids.length - variants[b].ids.length);
  const T = Math.max(...variants.map((v) => v.ids.length));
  const bs = opts.batchSize ?? Math.min(64, autoBatchSize(model, T));
  for (let from = 0; from < order.length; from += bs) {
    const idx = order.slice(from, from + bs);
    const chunk = idx.map((i) => variants[i]);
    const offs = chunk.map((v) => v.resume?.position ?? 0);
    const batch = makeBatch(chunk.map((v, b) => v.ids.slice(offs[b])), model.config.vocabSize, model.padId);
    const layer0 = Math.min(...idx.map((i) => starts[i]));
    let startAt: { layer: number; resid: Tensor } | undefined;
    if (layer0 > 0) {
      const resid = new Float32Array(batch.B * batch.T * D); // [B,T,D]; pad positions stay 0 (never read by real ones)
      chunk.forEach((v, b) => {
        const r = v.prefix!(layer0);
        if (r.length !== v.ids.length * D) throw new FactlensError(`variant prefix at layer ${layer0}: expected ${v.ids.length}×${D} values, got ${r.length}`);
        resid.set(r.subarray(offs[b] * D), b * batch.T * D);
      });
      startAt = { layer: layer0, resid: new Tensor(resid, [batch.B, batch.T, D]) };
    }
    const past = offs.some((o) => o > 0) ? pastOf(model, chunk, layer0) : undefined;
    const at = offs.map((offset): RowOffset => ({ offset, pastSlots: past ? past.k[layer0].shape[2] : 0 }));
    const res = await model.run(batch, { hooks: hooksFor(model, chunk, at), logits: 'last', startAt, past, positionOffsets: offs, signal: opts.signal });
    chunk.forEach((v, b) => (out[idx[b]] = probOf(logitsAt(res.logits!, b, 0), v.target)));
    opts.onProgress?.(Math.min(from + bs, order.length), order.length);
  }
  return out;
}

/** The chunk's cached keys/values from layer0 on; rows that do not resume get an empty past. */
function pastOf(model: Model, chunk: Variant[], layer0: number): KvPast {
  if (model.recurrent) throw new FactlensError(`variant resume: ${model.name} is a state-space model (resume is for attention models' keys/values)`);
  return stackPasts(chunk.length, layer0, model.nLayers, (l, b) => {
    const r = chunk[b].resume;
    if (r) return r.past(l);
    const ref = chunk.find((v) => v.resume)!.resume!.past(l).k; // [1,Hkv,P,Dh]
    const empty = new Tensor(new Float32Array(0), [1, ref.shape[1], 0, ref.shape[3]]); // [1,Hkv,0,Dh]
    return { k: empty, v: empty };
  });
}

/** One hook per edited hook name (a single copy per run), then the path-blocking hooks. */
function hooksFor(model: Model, chunk: Variant[], at: RowOffset[]): Array<[string, HookFn]> {
  const byHook = new Map<string, Array<{ row: number; edit: RowEdit }>>();
  chunk.forEach((v, row) => {
    for (const edit of v.edits ?? []) byHook.set(edit.hook, [...(byHook.get(edit.hook) ?? []), { row, edit }]);
  });
  const hooks: Array<[string, HookFn]> = [...byHook].map(([name, list]): [string, HookFn] => [name, (act) => {
    const edited = act.clone();
    const per = edited.stride(0);
    for (const { row, edit } of list) edit.apply(edited.data.subarray(row * per, (row + 1) * per), edited.shape.slice(1), at[row]);
    return edited;
  }]);
  const blocks: PathBlock[] = chunk.flatMap((v, row) => (v.blocks ?? []).map((b) => ({ ...b, rows: [row] })));
  if (blocks.length) hooks.push(...pathBlockingHooks(model, blocks));
  return hooks;
}

/** Set positions of a [T,W] view (a row of a [B,T,W] activation) to vectors. */
export function setPositions(view: Float32Array, width: number, positions: number[], vec: (t: number) => ArrayLike<number>): void {
  for (const t of positions) view.set(vec(t), t * width);
}

/** Per-layer activations of one prompt: acts.get(local)[layer] is a [T·W] array (this row only). */
export interface PromptActs {
  ids: number[];
  acts: Map<string, Float32Array[]>;
  /** With `keysValues` (transformers): keys/values [1,Hkv,position,Dh] of tokens before `position` at `layer` (kvPastAt). */
  past?: (layer: number, position: number) => { k: Tensor; v: Tensor };
}

/**
 * Unedited runs of several prompts (batched), keeping the named per-layer hook points (local names,
 * e.g. 'resid_pre', 'mixer.x') of each prompt's own positions.
 */
export async function recordRuns(model: Model, prompts: number[][], locals: string[], opts: RunVariantsOptions & { keysValues?: boolean } = {}): Promise<PromptActs[]> {
  const out: PromptActs[] = [];
  const T = Math.max(...prompts.map((p) => p.length), 1);
  const bs = opts.batchSize ?? Math.min(64, autoBatchSize(model, T));
  const names = [...locals.flatMap((n) => [...Array(model.nLayers).keys()].map((l) => `layers.${l}.${n}`)), ...(opts.keysValues ? kvResumeCacheNames(model) : [])];
  for (let from = 0; from < prompts.length; from += bs) {
    const chunk = prompts.slice(from, from + bs);
    const res = await model.run(chunk, { cache: names, logits: 'none' });
    chunk.forEach((ids, b) => {
      const acts = new Map<string, Float32Array[]>();
      for (const n of locals) {
        acts.set(n, [...Array(model.nLayers).keys()].map((l) => {
          const t = res.cache.get(`layers.${l}.${n}`); // [B,T,W]
          const W = t.stride(1);
          return t.data.slice(b * t.shape[1] * W, (b * t.shape[1] + ids.length) * W);
        }));
      }
      out.push({ ids, acts, past: opts.keysValues ? (l, p) => kvPastAt(model, res.cache, l, p, b) : undefined });
    });
    opts.onProgress?.(Math.min(from + bs, prompts.length), prompts.length);
  }
  return out;
}
