/**
 * Many edited runs, batched by the row engine (runtime/row-engine.ts): each variant is one batch row
 * with its own tokens, its own position-wise edits (any hook, any positions) and its own path
 * blocks, and reads p(target) at its last token. A variant skips the layers before its first edit
 * (from the residual of an unedited run of the same tokens) and, with `resume`, the positions before
 * it (from that run's carry). Used by the knockout and path-restoration experiments.
 */
import { FactlensError } from '../../errors';
import type { HookFn } from '../../runtime/forward';
import type { Model } from '../../runtime/model';
import { probOf } from '../../runtime/logits';
import { PathBlock, pathBlockingHooks } from './path-blocking';
import { autoBatchSize, Carry, carryAt, carryCacheNames, EngineRow, RowOffset, runRows } from '../../runtime/row-engine';


/**
 * An in-place edit of one row's activation at a hook; `view` has the hook's shape without the batch
 * axis. In a resumed row (Variant.resume) the position axis starts at `at.offset`, and attention
 * scores/patterns have `at.pastSlots` cached keys before the row's own (row-engine.ts, keyIndex).
 */
export interface RowEdit {
  hook: string;
  apply: (view: Float32Array, shape: number[], at: RowOffset) => void;
}

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
   * Nothing before token `position` changes, so the row runs tokens position.. only, from an
   * unedited run's carry before it at each layer ≥ startLayer (PromptActs.carry).
   */
  resume?: { position: number; carry: (layer: number) => Carry };
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
  const rows = variants.map((v, i): EngineRow & { variant: Variant } => {
    if ((v.startLayer ?? 0) > 0 && !v.prefix) throw new FactlensError(`variant ${i}: startLayer ${v.startLayer} needs a prefix residual`);
    return { variant: v, ids: v.ids, startLayer: v.startLayer, startPosition: v.resume?.position, resid: v.prefix, carry: v.resume && ((l) => v.resume!.carry(l)) };
  });
  const T = Math.max(...variants.map((v) => v.ids.length));
  await runRows(model, rows, {
    hooks: (pass) => hooksFor(model, pass.rows.map((r) => r.variant), pass.at),
    read: (r, i, logits) => (out[i] = probOf(logits, r.variant.target)),
    batchSize: opts.batchSize ?? Math.min(64, autoBatchSize(model, T)),
    onProgress: opts.onProgress,
    signal: opts.signal,
  });
  return out;
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
  /** With `carries`: the run's carry before `position` at `layer` (Mamba's state, a transformer's keys/values; carryAt). */
  carry?: (layer: number, position: number) => Carry;
}

/**
 * Unedited runs of several prompts (batched), keeping the named per-layer hook points (local names,
 * e.g. 'resid_pre', 'mixer.x') of each prompt's own positions.
 */
export async function recordRuns(model: Model, prompts: number[][], locals: string[], opts: RunVariantsOptions & { carries?: boolean } = {}): Promise<PromptActs[]> {
  const out: PromptActs[] = [];
  const T = Math.max(...prompts.map((p) => p.length), 1);
  const bs = opts.batchSize ?? Math.min(64, autoBatchSize(model, T));
  const names = [...locals.flatMap((n) => [...Array(model.nLayers).keys()].map((l) => `layers.${l}.${n}`)), ...(opts.carries ? carryCacheNames(model) : [])];
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
      out.push({ ids, acts, carry: opts.carries ? (l, p) => carryAt(model, res.cache, l, p, b) : undefined });
    });
    opts.onProgress?.(Math.min(from + bs, prompts.length), prompts.length);
  }
  return out;
}
