/**
 * The forward pass with hooks: embedding lookup, each layer as a stage,
 * then the head at the read-out positions. Hooks see canonical names; a hook
 * may return a replacement tensor. Everything can be recorded on a tape.
 */
import { isSsmConfig, ssmLayout } from '../models/ssm';
import { FactlensError } from '../errors';
import { Tensor } from './tensor';
import { Batch } from './batch';
import { ActivationCache } from './cache';
import { resolveHook } from './hooks';
import { emptyPlan, precompile, runStage, StageHook, StagePlan } from './run-stage';
import type { Model } from './model';
import type { Tape } from './tape';
import { rotaryTables } from '../models/rotary';
import { attentionMask } from '../models/attention-mask';
import { runLayerInChunks, StatePatch } from './state-patch';
import { layerStackStage } from './layer-stack';
import { stageLayout } from './stage';
import { throwIfAborted } from './abort';
import { guardHook } from './hook-guard';
import { KvPast, pastLayerInputs } from './kv-past';

export interface HookContext {
  name: string; // canonical hook name
  layer: number | null;
  batch: Batch;
  /** Per row, the absolute position of the run's first token (non-zero when a run resumes mid-sequence). */
  offsets: number[];
}
export type HookFn = (act: Tensor, ctx: HookContext) => Tensor | void | Promise<Tensor | void>;

/** Per-layer recurrent state of a Mamba model (the step API's carry). */
export interface MambaState {
  conv: Tensor[]; // per layer [B,K-1,E]: the last K-1 inputs of the conv
  ssm: Tensor[]; // per layer [B,E,N]
}

export interface RunOptions {
  /** Hooks by name (any accepted spelling); several per name run in order. */
  hooks?: Array<[string, HookFn]>;
  /** Hook names whose activations to keep. */
  cache?: string[];
  /** Where to compute logits: every position, each row's last real token, or nowhere. */
  logits?: 'all' | 'last' | 'none';
  /** Run only layers 0..untilLayer-1 (no head); the residual after them is returned. */
  untilLayer?: number;
  /**
   * Skip layers before `layer`, starting from this residual stream entering it
   * ([B,T,D], e.g. from a cached run of the same tokens): exact when no hook
   * would have changed the skipped layers. Mamba starts those layers from zero state.
   */
  startAt?: { layer: number; resid: Tensor };
  /** Record the run for gradients. */
  tape?: Tape;
  /** Mamba only: start from this state instead of zeros, and return the final state. */
  state?: MambaState;
  returnState?: boolean;
  /**
   * Transformers only: the keys/values of the positions before each row's positionOffsets, per
   * layer from the start layer on (kv-past.ts: kvPastAt, stackPasts). The run computes only its own
   * tokens, exactly as the full run would at those positions. In such a run attn.scores and
   * attn.pattern are [B,H,T,S+T]: keys are the S past slots (row b's first offsets[b] real, the rest
   * masked), then the run's tokens.
   */
  past?: KvPast;
  /** Mamba only: replace the recurrent state after given positions (see state-patch.ts). */
  statePatches?: StatePatch[];
  /**
   * Per row, the absolute position of the first token of this run, for runs
   * that resume mid-sequence from a saved state (with `state` and `startAt`).
   * Hooks see them as ctx.offsets; interventions take absolute positions.
   */
  positionOffsets?: number[];
  /** Stop before this forward pass when aborted (see abort.ts; a notebook interrupt stops it too). */
  signal?: AbortSignal;
}

export interface RunResult {
  logits: Tensor | null; // [B,P,V]
  cache: ActivationCache;
  batch: Batch;
  residual: Tensor; // [B,T,D] residual stream after the last layer run
  embed: Tensor; // [B,T,D] the embedding output (after hooks): a leaf for gradients
  state?: MambaState;
}

export async function runModel(model: Model, batch: Batch, opts: RunOptions = {}): Promise<RunResult> {
  throwIfAborted(opts.signal); // every method's batches pass here: the one check that stops them all
  const ends: Array<() => void> = []; // run-scoped leases (packed sessions in use), ended however the run ends
  try {
    return await runModelLeased(model, batch, opts, ends);
  } finally {
    for (const end of ends) end();
  }
}

async function runModelLeased(model: Model, batch: Batch, opts: RunOptions, ends: Array<() => void>): Promise<RunResult> {
  const L = model.nLayers;
  const resolve = (n: string) => resolveHook(n, model.arch, L, model.parallelResidual);
  const cache = new ActivationCache(model.arch, L, model.parallelResidual, batch);
  const hooks = new Map<string, HookFn[]>();
  for (const [n, fn] of opts.hooks ?? []) {
    const { name: c, layer } = resolve(n);
    hooks.set(c, [...(hooks.get(c) ?? []), guardHook(fn, c, layer)]);
  }
  const wanted = new Set((opts.cache ?? []).map((n) => resolve(n).name));
  if ((opts.state || opts.statePatches?.length) && !model.recurrent) throw new FactlensError('state: only Mamba models have a recurrent state');
  if (opts.past && model.recurrent) throw new FactlensError(`past: ${model.name} is a state-space model; resume it with state (resume.ts)`);
  for (const p of opts.statePatches ?? []) if (p.layer < 0 || p.layer >= L) throw new FactlensError(`state patch: layer ${p.layer} is out of range 0..${L - 1}`);

  const offsets = opts.positionOffsets ?? new Array(batch.B).fill(0);
  if (offsets.length !== batch.B) throw new FactlensError(`positionOffsets has ${offsets.length} entries for ${batch.B} rows`);
  const applyHooks = async (name: string, layer: number | null, t: Tensor): Promise<Tensor> => {
    for (const fn of hooks.get(name) ?? []) {
      const r = await fn(t, { name, layer, batch, offsets });
      if (r) {
        if (r.shape.join() !== t.shape.join()) throw new FactlensError(`hook "${name}" returned shape [${r.shape}], expected [${t.shape}]`);
        opts.tape?.recordReplacement(t, r);
        t = r;
      }
    }
    if (wanted.has(name)) cache.set(name, t);
    return t;
  };

  const start = opts.startAt?.layer ?? 0;
  if (start < 0 || start > L) throw new FactlensError(`startAt.layer ${start} is out of range 0..${L}`);
  if (opts.startAt && opts.startAt.resid.shape.join() !== [batch.B, batch.T, model.config.dModel].join()) {
    throw new FactlensError(`startAt.resid has shape [${opts.startAt.resid.shape}], expected [${batch.B},${batch.T},${model.config.dModel}]`);
  }
  const embed = opts.startAt ? opts.startAt.resid : await applyHooks('embed', null, model.embed(batch, opts.past ? offsets : undefined));
  let resid = embed; // [B,T,D]
  const until = opts.untilLayer ?? L;
  if (until < start || until > L) throw new FactlensError(`untilLayer ${until} is out of range ${start}..${L}`);
  const extra = opts.past ? pastLayerInputs(model, batch, offsets, opts.past) : layerInputs(model, batch, opts.state);
  const state: MambaState = { conv: [], ssm: [] };
  const plans = new Map<number, StagePlan>();
  for (let l = start; l < until; l++) {
    const plan = planFor(`layers.${l}.`, hooks, wanted, { name: '', layer: l, batch, offsets });
    if (opts.past) plan.options.kvCache = true; // the stage variant that reads past_k / past_v
    plans.set(l, plan);
  }
  // Nothing hooks, records or patches these layers: packed weights (if loaded so) and one session per stack.
  const hookFree = !opts.tape && !opts.statePatches?.length && [...plans.values()].every((p) => !p.reads.size && !p.writes.size);
  const packed = hookFree ? model.packedWeights : null;
  if (packed) ends.push(packed.begin()); // a retire() meanwhile waits for this run
  const mode = opts.logits ?? 'all';
  const withHead = until === L && mode !== 'none';
  const headPlan = planFor('', hooks, wanted, { name: '', layer: null, batch, offsets }, [model.recurrent ? 'norm_f' : 'final_ln', 'logits']);
  // Packed only when the whole run is plain, so a hooked run equals the default model's bit for bit.
  const headDef = packed && !headPlan.reads.size && !headPlan.writes.size ? packed.stage(model.headStage) : model.headStage;
  // onnxruntime holds the unembedding twice while it packs it: do that before the layers' packed weights exist.
  if (withHead && headDef !== model.headStage) await precompile(headDef, headPlan);
  const stackable = hookFree && until - start > 1 && !opts.state && !opts.past && !opts.returnState && stageLayout(model.layerStage).hosts.size === 0;
  if (stackable) {
    for (const [chunkFrom, chunkTo] of packed ? packed.chunks(start, until) : [[start, until]]) {
      for (const [from, to] of sameInputRuns(chunkFrom, chunkTo, extra)) {
        const stack = layerStackStage(model.layerStage, from, to); // see layer-stack.ts
        const def = packed ? packed.stage(stack) : stack;
        resid = (await runStage(def, { resid_pre: resid, ...extra(from) }, (w) => model.weight(w), { ...emptyPlan(), outs: ['resid_post'] })).outs.resid_post;
      }
    }
  }
  for (let l = start; l < until && !stackable; l++) {
    const plan = plans.get(l)!;
    if (!opts.returnState) plan.outs = ['resid_post'];
    const acts = { resid_pre: resid, ...extra(l) };
    const patches = (opts.statePatches ?? []).filter((p) => p.layer === l);
    const def = packed ? packed.stage(model.layerStage, `layers.${l}.`) : model.layerStage;
    const res = patches.length
      ? await runLayerInChunks(model, l, acts, plan, patches, opts.tape)
      : await runStage(def, acts, (w) => model.weight(`layers.${l}.${w}`), plan, opts.tape);
    for (const [local, t] of res.reads) cache.set(`layers.${l}.${local}`, t);
    resid = res.outs.resid_post;
    if (opts.returnState) {
      state.conv[l] = res.outs.conv_state;
      state.ssm[l] = res.outs.ssm_state;
    }
  }
  let logits: Tensor | null = null;
  if (withHead) {
    const readout = mode === 'all' ? resid : gatherLast(resid, batch, opts.tape); // [B,P,D]
    const res = await runStage(headDef, { resid: readout }, (w) => model.weight(w), headPlan, opts.tape);
    for (const [local, t] of res.reads) cache.set(local, t);
    logits = res.outs.logits;
  }
  return { logits, cache, batch, residual: resid, embed, state: opts.returnState ? state : undefined };
}

/** The stage plan for names under `prefix` (a layer) or the given head names. */
function planFor(prefix: string, hooks: Map<string, HookFn[]>, wanted: Set<string>, ctx: HookContext, only?: string[]): StagePlan {
  const plan = emptyPlan();
  const local = (n: string) => (prefix ? (n.startsWith(prefix) ? n.slice(prefix.length) : null) : only!.includes(n) ? n : null);
  for (const [n, fns] of hooks) {
    const l = local(n);
    if (l === null) continue;
    plan.writes.set(l, fns.map((fn): StageHook => (t) => fn(t, { ...ctx, name: n })));
  }
  for (const n of wanted) {
    const l = local(n);
    if (l !== null) plan.reads.add(l);
  }
  if (plan.reads.has('mixer.state')) plan.options.states = true;
  if (plan.writes.has('mixer.state')) throw new FactlensError('mixer.state is read-only in hooks; patch states with the statePatch option of patchState()');
  return plan;
}

/** [from, to) cut where a layer's inputs differ from the previous one's (sliding-window layers get another mask): a stack shares its inputs. */
function sameInputRuns(from: number, to: number, extra: (l: number) => Record<string, Tensor>): [number, number][] {
  const runs: [number, number][] = [[from, from + 1]];
  for (let l = from + 1; l < to; l++) {
    if (extra(l) === extra(l - 1)) runs[runs.length - 1][1] = l + 1;
    else runs.push([l, l + 1]);
  }
  return runs;
}

/** Architecture-specific activation inputs of layer l (the same object for layers whose inputs are the same). */
function layerInputs(model: Model, batch: Batch, init?: MambaState): (l: number) => Record<string, Tensor> {
  const { B, T } = batch;
  const c = model.config;
  if (isSsmConfig(c)) {
    const { dInner: E, dState: N, convKernel: K, convWidth } = ssmLayout(c)!;
    const zeroConv = Tensor.zeros([B, K - 1, convWidth]);
    const zeroSsm = Tensor.zeros([B, E, N]);
    const zeros = { conv_state: zeroConv, ssm_state: zeroSsm };
    if (!init) return () => zeros; // one object: the layers stack (sameInputRuns)
    return (l) => ({ conv_state: init.conv[l] ?? zeroConv, ssm_state: init.ssm[l] ?? zeroSsm });
  }
  const rd = c.rotaryDims;
  const { cos, sin } = rotaryTables(c, T);
  const attn_mask = new Tensor(attentionMask(batch.lengths, T), [B, 1, T, T]); // [B,1,T,T] additive
  // Learned positions (GPT-2) are added to the embedding instead: no rotary tables.
  const fixed: Record<string, Tensor> = rd === 0 ? { attn_mask } : { rope_cos: new Tensor(cos, [T, rd]), rope_sin: new Tensor(sin, [T, rd]), attn_mask };
  const window = 'slidingWindow' in c ? c.slidingWindow : undefined;
  if (window === undefined || window >= T) return () => fixed;
  const windowed = { ...fixed, attn_mask: new Tensor(attentionMask(batch.lengths, T, window), [B, 1, T, T]) }; // sliding-window layers
  const sliding = new Set('slidingLayers' in c ? c.slidingLayers : []);
  return (l) => (sliding.has(l) ? windowed : fixed);
}

/** Each row's last real position: [B,T,D] → [B,1,D] (recorded for gradients). */
function gatherLast(resid: Tensor, batch: Batch, tape?: Tape): Tensor {
  const [B, T, D] = resid.shape;
  const out = new Float32Array(B * D); // [B,1,D]
  for (let b = 0; b < B; b++) out.set(resid.data.subarray((b * T + batch.lengths[b] - 1) * D, (b * T + batch.lengths[b]) * D), b * D);
  const result = new Tensor(out, [B, 1, D]);
  tape?.recordJs([resid], [result], ([g]) => {
    const full = new Float32Array(B * T * D); // [B,T,D]
    for (let b = 0; b < B; b++) full.set(g!.data.subarray(b * D, (b + 1) * D), (b * T + batch.lengths[b] - 1) * D);
    return [new Tensor(full, [B, T, D])];
  });
  return result;
}
