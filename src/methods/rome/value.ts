/**
 * The value v* (§3.3 step 4): a vector δ added to the edited matrix's output at the subject's last
 * token of every rewriting prompt (context template + prompt + target tokens but the last) and of
 * the essence prompt "{} is a", optimised by Adam on
 *   NLL (mean over prompts of the token-averaged −log p(target))
 *   + klFactor · KL(P_now ‖ P_init) at the essence prompt's subject token
 *   + weightDecay · ‖δ‖ / ‖v_init‖²,
 * with ‖δ‖ clamped to clampFactor·‖v_init‖ after each step. v* = v_init + δ.
 * Gradients come from the engine's tape (d loss / d activation at the value hook).
 */
import { FactlensError } from '../../errors';
import { Batch, makeBatch } from '../../runtime/batch';
import type { MambaState, RunOptions } from '../../runtime/forward';
import { gradients, softmaxRow } from '../../runtime/grad';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import type { EditSite } from './sites';
import { contextRows } from './key';
import { subjectTokens } from './subject';
import { norm } from './linalg';
import { throwIfAborted } from '../../runtime/abort';

export interface ValueOptions {
  /** Forward passes at most (the last one only evaluates): default 20. */
  steps?: number;
  lr?: number; // 0.5
  klFactor?: number; // 0.0625
  weightDecay?: number; // 0.5
  clampFactor?: number; // 3
  /** Stop when the loss falls below this (default 0.05). */
  stopLoss?: number;
  /** romba's rule: stop after step `stopProbAfter` once the mean target probability exceeds this (default 0.9; null: off). */
  stopProb?: number | null;
  stopProbAfter?: number; // 12
  /** Essence prompts for the KL term (default ["{} is a"]). */
  klPrompts?: string[];
  /** Called after every evaluated step. */
  onStep?: (s: ValueStep) => void;
  /**
   * Mamba only (default true): run the tokens before the subject's last token once, and start every
   * optimisation pass from their recurrent state (δ cannot change them). Same numbers, fewer tokens.
   */
  prefixState?: boolean;
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

interface Row {
  ids: number[];
  lookup: number;
  /** Position whose logits predict the first target token (rewriting rows). */
  predictFrom?: number;
}

/** The rows of the v* batch: one per context template, then the KL prompts. */
export function valueRows(model: Model, template: string, subject: string, targetIds: number[], contexts: string[], klPrompts: string[]): { rows: Row[]; nRewrite: number } {
  const rewrite = contextRows(model, contexts, template, subject).map((st): Row => ({
    ids: st.ids.concat(targetIds.slice(0, -1)), lookup: st.last, predictFrom: st.ids.length - 1,
  }));
  const kl = klPrompts.map((p): Row => {
    const st = subjectTokens(model, p, subject);
    return { ids: st.ids, lookup: st.last };
  });
  return { rows: [...rewrite, ...kl], nRewrite: rewrite.length };
}

export interface ValueEvaluation {
  loss: number;
  nll: number;
  kl: number;
  weightDecay: number;
  prob: number;
  /** d loss / d δ. */
  grad: Float64Array;
}

/** The v* objective as a function of δ, with its gradient (one forward + one backward pass). */
export interface ValueObjective {
  rows: Row[];
  nRewrite: number;
  /** The module output at the bare prompt's subject token (known after the first evaluation). */
  vInit(): Float32Array;
  evaluate(delta: Float32Array): Promise<ValueEvaluation>;
}

/**
 * Where δ is added and optimised: ROME passes its edit site (the matrix's output); MEMIT passes the
 * residual stream after its last layer (methods/memit), whose norm then scales the decay and clamp.
 */
export type ValueTarget = Pick<EditSite, 'layer' | 'valueHook' | 'valueDim'>;

export async function valueObjective(model: Model, site: ValueTarget, template: string, subject: string, targetIds: number[], contexts: string[], opts: ValueOptions = {}): Promise<ValueObjective> {
  const klFactor = opts.klFactor ?? 0.0625;
  const wd = opts.weightDecay ?? 0.5;
  if (!targetIds.length) throw new FactlensError('the target has no tokens');
  let { rows, nRewrite } = valueRows(model, template, subject, targetIds, contexts, opts.klPrompts ?? ['{} is a']);
  const W = site.valueDim;
  let vInit: Float32Array | null = null;
  let klInit: Float32Array[] | null = null;
  const full = makeBatch(rows.map((r) => r.ids), model.config.vocabSize, model.padId);
  // Layers before the edited one never change: run them once and start every pass from there.
  const pre = site.layer > 0 ? (await model.run(full, { untilLayer: site.layer, logits: 'none' })).residual : model.embed(full); // [B,T,D]
  let batch = full;
  let run: RunOptions = site.layer > 0 ? { startAt: { layer: site.layer, resid: pre } } : {};
  if (model.arch === 'mamba' && opts.prefixState !== false && rows.some((r) => r.lookup > 0)) {
    const split = await splitAtLookup(model, site.layer, rows, pre);
    batch = split.batch;
    run = { startAt: { layer: site.layer, resid: split.resid }, state: split.state };
    rows = rows.map((r) => ({ ids: r.ids.slice(r.lookup), lookup: 0, predictFrom: r.predictFrom === undefined ? undefined : r.predictFrom - r.lookup }));
  }

  const lossFn = (logits: Tensor, out: { nll: number; kl: number; nllEach: number[] }) => {
    const [, T, V] = logits.shape;
    const grad = new Float32Array(logits.size); // [B,T,V]
    for (let b = 0; b < nRewrite; b++) {
      let each = 0;
      targetIds.forEach((tok, m) => {
        const off = (b * T + rows[b].predictFrom! + m) * V;
        const { logZ, probs } = softmaxRow(logits.data, off, V);
        each += (logZ - logits.data[off + tok]) / targetIds.length;
        const scale = 1 / (targetIds.length * nRewrite);
        for (let v = 0; v < V; v++) grad[off + v] = probs[v] * scale;
        grad[off + tok] -= scale;
      });
      out.nllEach.push(each);
      out.nll += each / nRewrite;
    }
    const nKl = rows.length - nRewrite;
    const logps: Float32Array[] = [];
    for (let j = 0; j < nKl; j++) {
      const b = nRewrite + j;
      const off = (b * T + rows[b].lookup) * V;
      const { logZ, probs } = softmaxRow(logits.data, off, V);
      const logp = new Float32Array(V);
      for (let v = 0; v < V; v++) logp[v] = logits.data[off + v] - logZ;
      logps.push(logp);
      const init = klInit ? klInit[j] : logp;
      let mean = 0; // E_p[log p − log p_init]
      for (let v = 0; v < V; v++) mean += probs[v] * (logp[v] - init[v]);
      out.kl += (klFactor * mean) / nKl;
      for (let v = 0; v < V; v++) grad[off + v] += (klFactor / nKl) * probs[v] * (logp[v] - init[v] - mean);
    }
    if (!klInit) klInit = logps;
    return { loss: out.nll + out.kl, grad: new Tensor(grad, logits.shape) };
  };

  const evaluate = async (delta: Float32Array): Promise<ValueEvaluation> => {
    if (delta.length !== W) throw new FactlensError(`δ must have ${W} entries (the width of ${site.valueHook}), got ${delta.length}`);
    if (!klInit && delta.some((x) => x !== 0)) await evaluate(new Float32Array(W)); // P_init is at δ = 0
    const addDelta = (t: Tensor): Tensor => {
      const T = t.shape[1];
      if (!vInit) vInit = t.data.slice(rows[0].lookup * W, (rows[0].lookup + 1) * W); // row 0: the bare prompt "{}"
      const out = t.clone();
      rows.forEach((r, b) => {
        const off = (b * T + r.lookup) * W;
        for (let i = 0; i < W; i++) out.data[off + i] += delta[i];
      });
      return out;
    };
    const parts = { nll: 0, kl: 0, nllEach: [] as number[] };
    const res = await gradients(model, batch, (logits) => lossFn(logits, parts), [site.valueHook], { ...run, hooks: [[site.valueHook, addDelta]], logits: 'all' });
    if (!vInit) throw new FactlensError(`the run never reached ${site.valueHook}`);
    const v0n2 = norm(vInit) ** 2;
    const dn = norm(delta);
    const weightDecay = (wd * dn) / v0n2;
    // d loss / d δ: the activation gradient at every row's lookup position, plus the weight decay's.
    const g = res.grads.get(site.valueHook)!; // [B,T,W]
    const T = g.shape[1];
    const grad = new Float64Array(W);
    rows.forEach((r, b) => {
      const off = (b * T + r.lookup) * W;
      for (let i = 0; i < W; i++) grad[i] += g.data[off + i];
    });
    if (dn > 0) for (let i = 0; i < W; i++) grad[i] += (wd * delta[i]) / (dn * v0n2);
    const prob = parts.nllEach.reduce((s, x) => s + Math.exp(-x), 0) / parts.nllEach.length;
    return { loss: parts.nll + parts.kl + weightDecay, nll: parts.nll, kl: parts.kl, weightDecay, prob, grad };
  };
  return { rows, nRewrite, vInit: () => vInit ?? fail('evaluate the objective first'), evaluate };
}

/**
 * Mamba: cut each row at its lookup position. The recurrent state after the tokens before it (every
 * layer from `layer` on) and the residual entering `layer` at the remaining positions let a run of
 * only the remaining tokens reproduce the full run exactly there.
 */
async function splitAtLookup(model: Model, layer: number, rows: Row[], pre: Tensor): Promise<{ batch: Batch; resid: Tensor; state: MambaState }> {
  const { dInner: E, dState: N, convKernel: K, dModel: D } = model.mambaConfig;
  const L = model.nLayers;
  const B = rows.length;
  const conv = Array.from({ length: L }, () => Tensor.zeros([B, K - 1, E]));
  const ssm = Array.from({ length: L }, () => Tensor.zeros([B, E, N]));
  const byLength = new Map<number, number[]>();
  rows.forEach((r, b) => r.lookup > 0 && byLength.set(r.lookup, [...(byLength.get(r.lookup) ?? []), b]));
  for (const [len, members] of byLength) {
    const prefixes = makeBatch(members.map((b) => rows[b].ids.slice(0, len)), model.config.vocabSize, model.padId);
    const st = (await model.run(prefixes, { returnState: true, logits: 'none' })).state!;
    for (let l = layer; l < L; l++) {
      members.forEach((b, i) => {
        conv[l].data.set(st.conv[l].at(i).data, b * (K - 1) * E);
        ssm[l].data.set(st.ssm[l].at(i).data, b * E * N);
      });
    }
  }
  const batch = makeBatch(rows.map((r) => r.ids.slice(r.lookup)), model.config.vocabSize, model.padId);
  const T = pre.shape[1];
  const resid = Tensor.zeros([B, batch.T, D]); // [B,T',D]
  rows.forEach((r, b) => resid.data.set(pre.data.subarray((b * T + r.lookup) * D, (b * T + r.ids.length) * D), b * batch.T * D));
  return { batch, resid, state: { conv, ssm } };
}

function fail(msg: string): never {
  throw new FactlensError(msg);
}

export async function optimizeValue(model: Model, site: ValueTarget, template: string, subject: string, targetIds: number[], contexts: string[], opts: ValueOptions = {}): Promise<ValueResult> {
  const steps = opts.steps ?? 20;
  const lr = opts.lr ?? 0.5;
  const clamp = opts.clampFactor ?? 3;
  const stopLoss = opts.stopLoss ?? 0.05;
  const stopProb = opts.stopProb === undefined ? 0.9 : opts.stopProb;
  const stopAfter = opts.stopProbAfter ?? 12;
  if (!(steps >= 1)) throw new FactlensError(`steps must be at least 1, got ${steps}`);
  const objective = await valueObjective(model, site, template, subject, targetIds, contexts, opts);
  const W = site.valueDim;
  const delta = new Float32Array(W);
  const adam = { m: new Float64Array(W), v: new Float64Array(W), t: 0 };
  const trace: ValueStep[] = [];
  let stopReason: ValueResult['stopReason'] = 'steps';
  for (let step = 0; step < steps; step++) {
    throwIfAborted(opts.signal);
    const e = await objective.evaluate(delta);
    const rec: ValueStep = { step, loss: e.loss, nll: e.nll, kl: e.kl, weightDecay: e.weightDecay, prob: e.prob, deltaNorm: norm(delta) };
    trace.push(rec);
    opts.onStep?.(rec);
    if (e.loss < stopLoss) { stopReason = 'loss'; break; }
    if (step === steps - 1) break;
    if (stopProb !== null && step > stopAfter && e.prob > stopProb) { stopReason = 'prob'; break; }
    adamStep(adam, delta, e.grad, lr);
    const maxNorm = clamp * norm(objective.vInit());
    const n = norm(delta);
    if (n > maxNorm) for (let i = 0; i < W; i++) delta[i] *= maxNorm / n;
  }
  const v0 = objective.vInit();
  const vStar = new Float32Array(W);
  for (let i = 0; i < W; i++) vStar[i] = v0[i] + delta[i];
  return { vStar, vInit: v0, delta, trace, stopReason };
}

/** torch.optim.Adam (β = 0.9, 0.999; ε = 1e-8; no weight decay), in place on x. */
function adamStep(s: { m: Float64Array; v: Float64Array; t: number }, x: Float32Array, g: Float64Array, lr: number): void {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  s.t++;
  const c1 = 1 - b1 ** s.t, c2 = 1 - b2 ** s.t;
  for (let i = 0; i < x.length; i++) {
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    x[i] -= (lr / c1) * (s.m[i] / (Math.sqrt(s.v[i]) / Math.sqrt(c2) + eps));
  }
}
