/**
 * ROME's v* objective (§3.3 step 4) for many requests at once. Request j has its own δ_j, added to
 * the edited matrix's output at the subject's last token of each of its rows: one per context
 * template (template + prompt + target tokens but the last) and one per KL ("essence") prompt. Its loss
 *   NLL_j (mean over its rewriting rows of the token-averaged −log p(target))
 *   + klFactor · KL(P_now ‖ P_init) at its KL prompts' subject token
 *   + weightDecay · ‖δ_j‖ / ‖v_init,j‖²
 * depends on its own rows only, so one forward/backward pass over the rows of several requests gives
 * every request exactly the gradient a pass over its rows alone would.
 * The loss is built from runtime/losses.ts terms and differentiated by the reverse-mode engine
 * (graph/autodiff.ts for d loss / d logits and d loss / d δ in the decay, the tape for the model).
 */
import { FactlensError } from '../../errors';
import { gradients } from '../../runtime/grad';
import { defineLoss, gatherPositions, klTerm, LossValue, nllTerm, normTerm, scatterPositions } from '../../runtime/losses';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import type { EditSite } from './sites';
import { contextRows, LookupRow } from './key';
import { subjectTokens } from './subject';
import { norm } from './linalg';
import { gatherRows, startRows } from './prefix-split';

/** What to edit: the prompt template, its subject and the new object's token ids. */
export interface ValueRequest {
  template: string;
  subject: string;
  targetIds: number[];
}

/** The objective's own settings (the rest of ValueOptions drives the optimiser). */
export interface ObjectiveOptions {
  klFactor?: number; // 0.0625
  weightDecay?: number; // 0.5
  /** Essence prompts for the KL term (default ["{} is a"]). */
  klPrompts?: string[];
  /**
   * Mamba only (default true): run the tokens before the subject's last token once, and start every
   * optimisation pass from their recurrent state (δ cannot change them). Same numbers, fewer tokens.
   */
  prefixState?: boolean;
}

export interface ValueRow extends LookupRow {
  /** Position whose logits predict the first target token (rewriting rows). */
  predictFrom?: number;
}

/** The rows of one request's v* batch: one per context template, then the KL prompts. */
export function valueRows(model: Model, template: string, subject: string, targetIds: number[], contexts: string[], klPrompts: string[]): { rows: ValueRow[]; nRewrite: number } {
  const rewrite = contextRows(model, contexts, template, subject).map((st): ValueRow => ({
    ids: st.ids.concat(targetIds.slice(0, -1)), lookup: st.last, predictFrom: st.ids.length - 1,
  }));
  const kl = klPrompts.map((p): ValueRow => {
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
  /** Mean over rewriting prompts of exp(−token-averaged NLL). */
  prob: number;
  /** d loss / d δ. */
  grad: Float64Array;
}

/** The v* objectives of several requests as functions of their δs (one forward + one backward pass per evaluation). */
export interface ValuesObjective {
  size: number;
  /** Request j's module output at its bare prompt's subject token (known after its first evaluation). */
  vInit(j: number): Float32Array;
  /** The objectives of requests `active` (distinct indices) at δs `deltas` (aligned with `active`). */
  evaluate(deltas: Float32Array[], active: number[]): Promise<ValueEvaluation[]>;
}

/**
 * Where δ is added and optimised: ROME passes its edit site (the matrix's output); MEMIT passes the
 * residual stream after its last layer (methods/memit), whose norm then scales the decay and clamp.
 */
export type ValueTarget = Pick<EditSite, 'layer' | 'valueHook' | 'valueDim'>;

interface Span {
  first: number;
  nRewrite: number;
  nKl: number;
  targetIds: number[];
}

interface Row extends ValueRow {
  request: number;
}

export async function valuesObjective(model: Model, site: ValueTarget, requests: ValueRequest[], contexts: string[], opts: ObjectiveOptions = {}): Promise<ValuesObjective> {
  const klFactor = opts.klFactor ?? 0.0625;
  const wd = opts.weightDecay ?? 0.5;
  const klPrompts = opts.klPrompts ?? ['{} is a'];
  if (!requests.length) throw new FactlensError('v*: give at least one request');
  const spans: Span[] = [];
  const all: Row[] = [];
  requests.forEach((q, j) => {
    if (!q.targetIds.length) throw new FactlensError(`the target of request ${j} ("${q.subject}") has no tokens`);
    const { rows, nRewrite } = valueRows(model, q.template, q.subject, q.targetIds, contexts, klPrompts);
    spans.push({ first: all.length, nRewrite, nKl: rows.length - nRewrite, targetIds: q.targetIds });
    all.push(...rows.map((r) => ({ ...r, request: j })));
  });
  const W = site.valueDim;
  const start = await startRows(model, site.layer, all, opts.prefixState !== false);
  const vInit: Array<Float32Array | null> = requests.map(() => null);
  const klInit: Array<Float32Array[] | null> = requests.map(() => null);

  const evaluate = async (deltas: Float32Array[], active: number[]): Promise<ValueEvaluation[]> => {
    if (deltas.length !== active.length) throw new FactlensError(`v*: ${deltas.length} δs for ${active.length} active requests`);
    if (new Set(active).size !== active.length || active.some((j) => !(j >= 0 && j < requests.length && Number.isInteger(j)))) throw new FactlensError(`v*: active requests must be distinct indices below ${requests.length}, got [${active}]`);
    deltas.forEach((d, i) => {
      if (d.length !== W) throw new FactlensError(`δ of request ${active[i]} must have ${W} entries (the width of ${site.valueHook}), got ${d.length}`);
    });
    // P_init is at δ = 0: evaluate there first where it is not known yet.
    const cold = active.filter((j, i) => !klInit[j] && deltas[i].some((x) => x !== 0));
    if (cold.length) await evaluate(cold.map(() => new Float32Array(W)), cold);
    const which = active.flatMap((j) => Array.from({ length: spans[j].nRewrite + spans[j].nKl }, (_, r) => spans[j].first + r));
    const { rows, batch, run } = gatherRows(model, start, which);
    const deltaOf = new Map(active.map((j, i) => [j, deltas[i]]));
    const firstRow = new Map<number, number>(); // request → its first row in this pass
    rows.forEach((r, b) => firstRow.has(r.request) || firstRow.set(r.request, b));
    const addDelta = (t: Tensor): Tensor => {
      const T = t.shape[1];
      for (const [j, b] of firstRow) if (!vInit[j]) vInit[j] = t.data.slice((b * T + rows[b].lookup) * W, (b * T + rows[b].lookup + 1) * W); // the bare prompt "{}"
      const out = t.clone(); // [B,T,W]
      rows.forEach((r, b) => {
        const d = deltaOf.get(r.request)!;
        const off = (b * T + r.lookup) * W;
        for (let i = 0; i < W; i++) out.data[off + i] += d[i];
      });
      return out;
    };
    // The logits rows the loss reads: per request, each rewriting row's target positions, then its KL rows.
    const at: Array<[number, number]> = [];
    const firstPos = new Map<number, number>();
    for (const j of active) {
      const b0 = firstRow.get(j)!, { nRewrite, nKl, targetIds } = spans[j];
      firstPos.set(j, at.length);
      for (let b = b0; b < b0 + nRewrite; b++) targetIds.forEach((_, m) => at.push([b, rows[b].predictFrom! - rows[b].cut + m]));
      for (let b = b0 + nRewrite; b < b0 + nRewrite + nKl; b++) at.push([b, rows[b].lookup]);
    }
    let value: LossValue | null = null;
    const lossFn = async (logits: Tensor) => {
      value = await valueLoss.evaluate(lossFeeds(logits, at, active, spans, firstPos, klInit, deltas, active.map((j) => wd / norm(vInit[j] ?? fail(`the run never reached ${site.valueHook}`)) ** 2), klFactor));
      return { loss: value.loss, grad: scatterPositions(value.gradLogits, at, logits.shape) };
    };
    const res = await gradients(model, batch, lossFn, [site.valueHook], { ...run, hooks: [[site.valueHook, addDelta]], logits: 'all' });
    const lv = value! as LossValue;
    const g = res.grads.get(site.valueHook)!; // [B,T,W]
    const T = g.shape[1];
    const V = lv.logp.shape[1];
    const gDelta = lv.gradParams.delta; // [n,W]
    return active.map((j, i) => {
      const { nRewrite, nKl, targetIds } = spans[j];
      const p0 = firstPos.get(j)!, pKl = p0 + nRewrite * targetIds.length;
      if (!klInit[j]) klInit[j] = Array.from({ length: nKl }, (_, k) => lv.logp.data.slice((pKl + k) * V, (pKl + k + 1) * V)); // P_init: δ = 0 here
      const sum = (x: Tensor, from: number, to: number) => x.data.subarray(from, to).reduce((a, b) => a + b, 0);
      // exp(−token-averaged NLL) of each rewriting row, for ROME's probability stop.
      let prob = 0;
      for (let r = 0; r < nRewrite; r++) {
        let each = 0;
        targetIds.forEach((tok, m) => (each -= lv.logp.data[(p0 + r * targetIds.length + m) * V + tok] / targetIds.length));
        prob += Math.exp(-each) / nRewrite;
      }
      // d loss_j / d δ_j: the activation gradient at each of its rows' lookup positions, plus the weight decay's.
      const grad = Float64Array.from(gDelta.data.subarray(i * W, (i + 1) * W));
      const b0 = firstRow.get(j)!;
      for (let b = b0; b < b0 + nRewrite + nKl; b++) {
        const off = (b * T + rows[b].lookup) * W;
        for (let k = 0; k < W; k++) grad[k] += g.data[off + k];
      }
      const nll = sum(lv.parts.nll, p0, pKl), kl = sum(lv.parts.kl, pKl, pKl + nKl), weightDecay = lv.parts.decay.data[i];
      return { loss: nll + kl + weightDecay, nll, kl, weightDecay, prob, grad };
    });
  };
  return { size: requests.length, vInit: (j) => vInit[j] ?? fail('evaluate the objective first'), evaluate };
}

/**
 * ROME's v* loss, nll + kl_factor·kl + weight_decay·‖δ‖/‖v_init‖², from runtime/losses.ts terms: the
 * factors (and the means over rows and target tokens) live in the fed weights, the engine differentiates.
 */
const valueLoss = defineLoss('rome.value', (L) => ({
  nll: nllTerm(L, L.logp, L.input('targetWeights', ['P', 'V'])),
  kl: klTerm(L, L.logp, L.input('logpInit', ['P', 'V']), L.input('klWeights', ['P', 1])),
  decay: normTerm(L, L.param('delta', ['n', 'W']), L.input('decayScale', ['n', 1])),
}));

/** The feeds of valueLoss for one pass: positions `at`, the active requests' δs and decay scales. */
function lossFeeds(logits: Tensor, at: Array<[number, number]>, active: number[], spans: Span[], firstPos: Map<number, number>, klInit: Array<Float32Array[] | null>, deltas: Float32Array[], decayScale: number[], klFactor: number): Record<string, Tensor> {
  const V = logits.shape[2], P = at.length, W = deltas[0].length;
  const targetWeights = Tensor.zeros([P, V]); // [P,V]
  const logpInit = Tensor.zeros([P, V]); // [P,V]
  const klWeights = Tensor.zeros([P, 1]); // [P,1]
  for (const j of active) {
    const { nRewrite, nKl, targetIds } = spans[j];
    const p0 = firstPos.get(j)!, pKl = p0 + nRewrite * targetIds.length;
    // NLL: mean over rewriting rows of the mean over target tokens.
    for (let r = 0; r < nRewrite; r++) targetIds.forEach((tok, m) => (targetWeights.data[(p0 + r * targetIds.length + m) * V + tok] = 1 / (targetIds.length * nRewrite)));
    // KL: mean over KL rows; 0 until P_init is known (it is at δ = 0, where KL = 0).
    const init = klInit[j];
    for (let k = 0; k < nKl; k++) {
      if (!init) continue;
      klWeights.data[pKl + k] = klFactor / nKl;
      logpInit.data.set(init[k], (pKl + k) * V);
    }
  }
  const delta = Tensor.zeros([deltas.length, W]); // [n,W]
  deltas.forEach((d, i) => delta.data.set(d, i * W));
  return { logits: gatherPositions(logits, at), targetWeights, logpInit, klWeights, delta, decayScale: Tensor.from(decayScale, [decayScale.length, 1]) };
}

function fail(msg: string): never {
  throw new FactlensError(msg);
}
