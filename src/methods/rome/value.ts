/**
 * The value v* (§3.3 step 4): v* = v_init + δ, δ optimised by Adam on ROME's objective
 * (value-objective.ts), with ‖δ‖ clamped to clampFactor·‖v_init‖ after each step.
 * `optimizeValues` runs many requests at once: the rows of every request still optimising go
 * through one batched forward/backward pass per step, each request with its own δ, Adam state and
 * early stop (a finished request's δ is frozen and its rows leave the batch). Results equal the
 * one-request runs; `optimizeValue` is the one-request case.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { throwIfAborted } from '../../runtime/abort';
import { norm } from './linalg';
import { adamState, adamStep } from './adam';
import { ObjectiveOptions, ValueEvaluation, ValueRequest, valueRows, ValueRow, valuesObjective, ValueTarget } from './value-objective';

export { valueRows, valuesObjective } from './value-objective';
export type { ValueEvaluation, ValueRequest, ValueRow, ValueTarget, ValuesObjective, ObjectiveOptions } from './value-objective';

export interface ValueOptions extends ObjectiveOptions {
  /** Forward passes at most (the last one only evaluates): default 20. */
  steps?: number;
  lr?: number; // 0.5
  clampFactor?: number; // 3
  /** Stop when the loss falls below this (default 0.05). */
  stopLoss?: number;
  /** romba's rule: stop after step `stopProbAfter` once the mean target probability exceeds this (default 0.9; null: off). */
  stopProb?: number | null;
  stopProbAfter?: number; // 12
  /** Called after every evaluated step, with the index of the request (0 for optimizeValue). */
  onStep?: (s: ValueStep, request: number) => void;
  /**
   * optimizeValues: the most tokens one batched pass holds (rows × longest row, before the Mamba
   * prefix cut); requests are taken in chunks that fit, a request larger than this alone. Default 2048.
   */
  batchTokens?: number;
  /** Stops the optimisation before its next step (runtime/abort.ts). */
  signal?: AbortSignal;
}

export interface ValueStep {
  step: number;
  loss: number;
  nll: number;
  kl: number;
  weightDecay: number;
  /** Mean over rewriting prompts of exp(−token-averaged NLL). */
  prob: number;
  deltaNorm: number;
}

export interface ValueResult {
  vStar: Float32Array;
  vInit: Float32Array;
  delta: Float32Array;
  trace: ValueStep[];
  stopReason: 'loss' | 'prob' | 'steps';
}

/** The one-request objective (as a function of δ), e.g. for gradient checks. */
export interface ValueObjective {
  rows: ValueRow[];
  nRewrite: number;
  /** The module output at the bare prompt's subject token (known after the first evaluation). */
  vInit(): Float32Array;
  evaluate(delta: Float32Array): Promise<ValueEvaluation>;
}

export async function valueObjective(model: Model, site: ValueTarget, template: string, subject: string, targetIds: number[], contexts: string[], opts: ValueOptions = {}): Promise<ValueObjective> {
  const objective = await valuesObjective(model, site, [{ template, subject, targetIds }], contexts, opts);
  const { rows, nRewrite } = valueRows(model, template, subject, targetIds, contexts, opts.klPrompts ?? ['{} is a']);
  return { rows, nRewrite, vInit: () => objective.vInit(0), evaluate: async (delta) => (await objective.evaluate([delta], [0]))[0] };
}

export async function optimizeValue(model: Model, site: ValueTarget, template: string, subject: string, targetIds: number[], contexts: string[], opts: ValueOptions = {}): Promise<ValueResult> {
  return (await optimizeValues(model, site, [{ template, subject, targetIds }], contexts, opts))[0];
}

/** v* for each request (aligned with `requests`), batched over requests in chunks of at most opts.batchTokens tokens. */
export async function optimizeValues(model: Model, site: ValueTarget, requests: ValueRequest[], contexts: string[], opts: ValueOptions = {}): Promise<ValueResult[]> {
  const steps = opts.steps ?? 20;
  if (!(steps >= 1)) throw new FactlensError(`steps must be at least 1, got ${steps}`);
  const budget = opts.batchTokens ?? 2048;
  if (!(Number.isInteger(budget) && budget >= 1)) throw new FactlensError(`batchTokens must be a positive integer, got ${budget}`);
  if (!Array.isArray(requests) || !requests.length) throw new FactlensError('optimizeValues: requests must be a non-empty array');
  const out: ValueResult[] = [];
  for (const chunk of chunkRequests(model, requests, contexts, opts.klPrompts ?? ['{} is a'], budget)) {
    const res = await optimizeChunk(model, site, chunk.map((j) => requests[j]), contexts, opts, (j) => chunk[j]);
    out.push(...res);
  }
  return out;
}

/** Consecutive runs of request indices whose rows (count × longest row) fit `budget` tokens. */
function chunkRequests(model: Model, requests: ValueRequest[], contexts: string[], klPrompts: string[], budget: number): number[][] {
  const chunks: number[][] = [];
  let cur: number[] = [], rows = 0, longest = 0;
  requests.forEach((q, j) => {
    const r = valueRows(model, q.template, q.subject, q.targetIds, contexts, klPrompts).rows;
    const n = rows + r.length, T = Math.max(longest, ...r.map((x) => x.ids.length));
    if (cur.length && n * T > budget) {
      chunks.push(cur);
      cur = [], rows = 0, longest = 0;
    }
    cur.push(j);
    rows += r.length;
    longest = Math.max(longest, ...r.map((x) => x.ids.length));
  });
  chunks.push(cur);
  return chunks;
}

/** Adam on every request of one chunk together; `index` maps a chunk position to the caller's request index. */
async function optimizeChunk(model: Model, site: ValueTarget, requests: ValueRequest[], contexts: string[], opts: ValueOptions, index: (j: number) => number): Promise<ValueResult[]> {
  const steps = opts.steps ?? 20;
  const lr = opts.lr ?? 0.5;
  const clamp = opts.clampFactor ?? 3;
  const stopLoss = opts.stopLoss ?? 0.05;
  const stopProb = opts.stopProb === undefined ? 0.9 : opts.stopProb;
  const stopAfter = opts.stopProbAfter ?? 12;
  const objective = await valuesObjective(model, site, requests, contexts, opts);
  const W = site.valueDim;
  const state = requests.map(() => ({ delta: new Float32Array(W), adam: adamState(W), trace: [] as ValueStep[], stopReason: 'steps' as ValueResult['stopReason'] }));
  let active = requests.map((_, j) => j);
  for (let step = 0; step < steps && active.length; step++) {
    throwIfAborted(opts.signal);
    const evals = await objective.evaluate(active.map((j) => state[j].delta), active);
    active = active.filter((j, i) => {
      const s = state[j], e = evals[i];
      const rec: ValueStep = { step, loss: e.loss, nll: e.nll, kl: e.kl, weightDecay: e.weightDecay, prob: e.prob, deltaNorm: norm(s.delta) };
      s.trace.push(rec);
      opts.onStep?.(rec, index(j));
      // ROME's checks, in its order: loss small enough, out of steps, target probability high enough.
      if (e.loss < stopLoss) s.stopReason = 'loss';
      else if (stopProb !== null && step < steps - 1 && step > stopAfter && e.prob > stopProb) s.stopReason = 'prob';
      if (s.stopReason !== 'steps' || step === steps - 1) return false;
      adamStep(s.adam, s.delta, e.grad, lr);
      const maxNorm = clamp * norm(objective.vInit(j));
      const n = norm(s.delta);
      if (n > maxNorm) for (let i = 0; i < W; i++) s.delta[i] *= maxNorm / n;
      return true;
    });
  }
  return state.map((s, j) => {
    const v0 = objective.vInit(j);
    const vStar = Float32Array.from(v0, (x, i) => x + s.delta[i]);
    return { vStar, vInit: v0, delta: s.delta, trace: s.trace, stopReason: s.stopReason };
  });
}
