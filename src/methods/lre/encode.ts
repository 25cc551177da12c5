/**
 * Encoded prompts: one clean run per prompt, keeping what every LRE step
 * needs afterwards: the residual stream at every layer (from the subject's
 * last token on), the next-token logits, and for Mamba the recurrent state
 * entering the subject's last token. `runFrom` then re-runs a batch of
 * encoded prompts from stream k (optionally with Δh added to h), which is
 * all the Jacobians (taped, k copies of one prompt) and the causality edits
 * need.
 *
 * Runs skip what cannot change: nothing before the subject's last token
 * depends on h, so they resume there and only the last few tokens are
 * recomputed (and differentiated), from the saved recurrent state (Mamba) or
 * the saved keys/values of the earlier tokens (transformers; kv-past.ts).
 * Mamba prompts that share a prefix (every test prompt of a trial shares its
 * few-shot context) run it once.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import type { HookFn, MambaState } from '../../runtime/forward';
import { makeBatch } from '../../runtime/batch';
import { Tensor } from '../../runtime/tensor';
import { stackStates } from '../../runtime/resume';
import { KvPast, kvPastAt, kvResumeCacheNames, stackPasts } from '../../runtime/kv-past';
import type { Tape } from '../../runtime/tape';
import { SubjectPrompt } from './prompts';

export interface EncodedPrompt extends SubjectPrompt {
  /** First position kept in `streams`: the subject's last token (Mamba-2: 0). */
  start: number;
  /** Per stream k = 0..L: the residual entering layer k at positions start..T−1, [(T−start)·D]. */
  streams: Float32Array[];
  /** Mamba: the state entering position `start`, per layer (conv [K−1·E], ssm [E·N]). */
  state?: { conv: Float32Array[]; ssm: Float32Array[] };
  /** Transformers: keys and values of positions 0..start−1, per layer [1,Hkv,start,Dh]. */
  past?: { k: Tensor[]; v: Tensor[] };
  /** Next-token logits at the last position [V]. */
  logits: Float32Array;
}

/** The vector of stream k at absolute position `pos` (default: the subject's last token). */
export function streamAt(model: Model, p: EncodedPrompt, k: number, pos = p.subjectLast): Float32Array {
  const D = model.config.dModel;
  const i = pos - p.start;
  if (i < 0 || pos >= p.ids.length) throw new FactlensError(`position ${pos} was not kept for this prompt (kept ${p.start}..${p.ids.length - 1})`);
  return p.streams[k].subarray(i * D, (i + 1) * D);
}

/** Stream k at the prompt's last token. */
export function streamLast(model: Model, p: EncodedPrompt, k: number): Float32Array {
  return streamAt(model, p, k, p.ids.length - 1);
}

const MAX_ROWS = 64;

/** Run every prompt once (batched) and keep its streams, logits and (Mamba) state. */
export async function encodePrompts(model: Model, prompts: SubjectPrompt[], opts: { batchSize?: number } = {}): Promise<EncodedPrompt[]> {
  if (!prompts.length) return [];
  const bs = opts.batchSize ?? MAX_ROWS;
  const out: EncodedPrompt[] = [];
  for (let i = 0; i < prompts.length; i += bs) {
    const part = prompts.slice(i, i + bs);
    out.push(...(model.arch === 'mamba' ? await encodeMamba(model, part) : model.recurrent ? await encodeFull(model, part) : await encodeAttention(model, part)));
  }
  return out;
}

function streamCacheNames(model: Model): string[] {
  return Array.from({ length: model.nLayers }, (_, l) => `layers.${l}.resid_pre`);
}

/** Streams [B,T,D] of a finished run: stream l from the cache, stream L = the final residual. */
function collectStreams(model: Model, cache: { get(n: string): Tensor }, residual: Tensor): Tensor[] {
  return [...streamCacheNames(model).map((n) => cache.get(n)), residual];
}

function rowSlice(t: Tensor, b: number, from: number, to: number): Float32Array {
  const [, T, D] = t.shape;
  return t.data.slice((b * T + from) * D, (b * T + to) * D);
}

/** Mamba-2 (no resume here yet): one full run, every position kept. */
async function encodeFull(model: Model, prompts: SubjectPrompt[]): Promise<EncodedPrompt[]> {
  const res = await model.run(prompts.map((p) => p.ids), { cache: streamCacheNames(model), logits: 'last' });
  const streams = collectStreams(model, res.cache, res.residual);
  const V = res.logits!.shape[2];
  return prompts.map((p, b) => ({
    ...p,
    start: 0,
    streams: streams.map((s) => rowSlice(s, b, 0, p.ids.length)),
    logits: res.logits!.data.slice(b * V, (b + 1) * V),
  }));
}

/** One full run; each prompt keeps its streams from the subject's last token on and the keys/values before it. */
async function encodeAttention(model: Model, prompts: SubjectPrompt[]): Promise<EncodedPrompt[]> {
  const res = await model.run(prompts.map((p) => p.ids), { cache: kvResumeCacheNames(model), logits: 'last' });
  const streams = collectStreams(model, res.cache, res.residual);
  const V = res.logits!.shape[2];
  const layers = [...Array(model.nLayers).keys()];
  return prompts.map((p, b) => {
    const pasts = layers.map((l) => kvPastAt(model, res.cache, l, p.subjectLast, b));
    return {
      ...p,
      start: p.subjectLast,
      streams: streams.map((s) => rowSlice(s, b, p.subjectLast, p.ids.length)),
      past: { k: pasts.map((x) => x.k), v: pasts.map((x) => x.v) },
      logits: res.logits!.data.slice(b * V, (b + 1) * V),
    };
  });
}

async function encodeMamba(model: Model, prompts: SubjectPrompt[]): Promise<EncodedPrompt[]> {
  const L = model.nLayers;
  // 1. The longest token prefix all prompts share, up to the earliest subject token.
  let c = Math.min(...prompts.map((p) => p.subjectLast));
  for (const p of prompts) {
    let i = 0;
    while (i < c && p.ids[i] === prompts[0].ids[i]) i++;
    c = i;
  }
  const shared = c > 0 ? (await model.run([prompts[0].ids.slice(0, c)], { returnState: true, logits: 'none' })).state! : null;
  // 2. The state entering each subject's last token: one run per group of equal remaining prefix length.
  const states: MambaState[] = new Array(prompts.length);
  const groups = new Map<number, number[]>();
  prompts.forEach((p, i) => groups.set(p.subjectLast - c, [...(groups.get(p.subjectLast - c) ?? []), i]));
  for (const [len, idx] of groups) {
    if (len === 0) {
      idx.forEach((i) => (states[i] = shared ?? zeroState(model, 1)));
      continue;
    }
    const res = await model.run(idx.map((i) => prompts[i].ids.slice(c, prompts[i].subjectLast)), {
      returnState: true, logits: 'none', state: shared ? repeatState(shared, idx.length) : undefined,
    });
    idx.forEach((i, r) => (states[i] = rowState(res.state!, r)));
  }
  // 3. The tails (subject's last token to the end), batched from those states.
  const res = await model.run(prompts.map((p) => p.ids.slice(p.subjectLast)), {
    cache: streamCacheNames(model), logits: 'last', state: stackRowStates(states, L),
  });
  const streams = collectStreams(model, res.cache, res.residual);
  const V = res.logits!.shape[2];
  return prompts.map((p, b) => ({
    ...p,
    start: p.subjectLast,
    streams: streams.map((s) => rowSlice(s, b, 0, p.ids.length - p.subjectLast)),
    state: { conv: states[b].conv.map((t) => t.data.slice()), ssm: states[b].ssm.map((t) => t.data.slice()) },
    logits: res.logits!.data.slice(b * V, (b + 1) * V),
  }));
}

function zeroState(model: Model, B: number): MambaState {
  const { dInner: E, dState: N, convKernel: K } = model.mambaConfig;
  const L = model.nLayers;
  return {
    conv: Array.from({ length: L }, () => Tensor.zeros([B, K - 1, E])),
    ssm: Array.from({ length: L }, () => Tensor.zeros([B, E, N])),
  };
}

function repeat(t: Tensor, B: number): Tensor {
  const out = new Float32Array(t.size * B);
  for (let b = 0; b < B; b++) out.set(t.data, b * t.size);
  return new Tensor(out, [B, ...t.shape.slice(1)]);
}

function repeatState(s: MambaState, B: number): MambaState {
  return { conv: s.conv.map((t) => repeat(t, B)), ssm: s.ssm.map((t) => repeat(t, B)) };
}

/** Whole-row states (one per prompt) as one batch state for layers from..L−1. */
function stackRowStates(states: MambaState[], L: number, from = 0): MambaState {
  return stackStates(states.length, from, L, (l, b) => ({ conv: states[b].conv[l], ssm: states[b].ssm[l] }));
}

function rowState(s: MambaState, r: number): MambaState {
  const row = (t: Tensor) => new Tensor(t.data.slice(r * t.stride(0), (r + 1) * t.stride(0)), [1, ...t.shape.slice(1)]);
  return { conv: s.conv.map(row), ssm: s.ssm.map(row) };
}


/** One row of a runFrom batch: an encoded prompt, optionally with Δh added to h at the subject's last token. */
export interface RunRow {
  prompt: EncodedPrompt;
  delta?: ArrayLike<number>;
}

export interface RunFromResult {
  /** The batch's starting residual [B,T',D] (a tape leaf: gradients w.r.t. h land here). */
  start: Tensor;
  /** The stream after the last layer run [B,T',D]. */
  residual: Tensor;
  /** Next-token logits at each row's last token [B,1,V] (when asked for). */
  logits: Tensor | null;
  /** Per row: its positions in the batch are absolute − offset. */
  offsets: number[];
}

/**
 * Re-run rows from stream k (the residual entering layer k) up to stream
 * `until` (default L, with logits), adding each row's Δh to stream k at its
 * subject's last token. Exactly the clean run where Δh = 0.
 */
export async function runFrom(model: Model, rows: RunRow[], k: number, opts: { until?: number; tape?: Tape; logits?: boolean; hooks?: Array<[string, HookFn]> } = {}): Promise<RunFromResult> {
  const L = model.nLayers;
  const D = model.config.dModel;
  const until = opts.until ?? L;
  if (k < 0 || k > until || until > L) throw new FactlensError(`runFrom: streams ${k}..${until} are out of range 0..${L}`);
  const offsets = rows.map((r) => r.prompt.start);
  const idRows = rows.map((r) => r.prompt.ids.slice(r.prompt.start));
  const batch = makeBatch(idRows, model.config.vocabSize, model.padId);
  const start = Tensor.zeros([batch.B, batch.T, D]); // [B,T',D]
  rows.forEach((r, b) => {
    start.data.set(r.prompt.streams[k], b * batch.T * D);
    if (r.delta) {
      if (r.delta.length !== D) throw new FactlensError(`runFrom: Δh has ${r.delta.length} entries, d_model is ${D}`);
      const off = (b * batch.T + r.prompt.subjectLast - r.prompt.start) * D;
      for (let i = 0; i < D; i++) start.data[off + i] += r.delta[i];
    }
  });
  let state: MambaState | undefined;
  if (model.arch === 'mamba') {
    const { dInner: E, dState: N, convKernel: K } = model.mambaConfig;
    state = stackRowStates(rows.map((r) => {
      if (!r.prompt.state) throw new FactlensError('runFrom: this Mamba prompt was encoded without its state');
      return {
        conv: r.prompt.state.conv.map((d) => new Tensor(d, [1, K - 1, E])),
        ssm: r.prompt.state.ssm.map((d) => new Tensor(d, [1, E, N])),
      };
    }), L, k);
  }
  let past: KvPast | undefined;
  if (!model.recurrent && offsets.some((o) => o > 0)) {
    past = stackPasts(rows.length, k, L, (l, b) => {
      const p = rows[b].prompt.past;
      if (!p) throw new FactlensError('runFrom: this prompt was encoded without its keys/values');
      return { k: p.k[l], v: p.v[l] };
    });
  }
  const wantLogits = (opts.logits ?? until === L) && until === L;
  const res = await model.run(batch, {
    startAt: { layer: k, resid: start }, untilLayer: until, state, past, positionOffsets: offsets, tape: opts.tape, hooks: opts.hooks, logits: wantLogits ? 'last' : 'none',
  });
  return { start, residual: res.residual, logits: res.logits, offsets };
}
