/**
 * ROME's v* objective (§3.3 step 4) for many requests at once. Request j has its own δ_j, added to
 * the edited matrix's output at the subject's last token of each of its rows: one per context
 * template (template + prompt + target tokens but the last) and one per KL ("essence") prompt. Its loss
 *   NLL_j (mean over its rewriting rows of the token-averaged −log p(target))
 *   + klFactor · KL(P_now ‖ P_init) at its KL prompts' subject token
 *   + weightDecay · ‖δ_j‖ / ‖v_init,j‖²
 * depends on its own rows only, so one forward/backward pass over the rows of several requests gives
 * every request exactly the gradient a pass over its rows alone would.
 * Gradients come from the engine's tape (d loss / d activation at the value hook).
 */
import { FactlensError } from '../../errors';
import { gradients, softmaxRow } from '../../runtime/grad';
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
    const parts = active.map(() => ({ nll: 0, kl: 0, nllEach: [] as number[] }));
    const lossFn = (logits: Tensor) => {
      const grad = new Float32Array(logits.size); // [B,T,V]
      let loss = 0;
      active.forEach((j, i) => {
        const b0 = firstRow.get(j)!;
        rewriteNll(logits, grad, rows, b0, spans[j], parts[i]);
        const logps = klTerm(logits, grad, rows, b0 + spans[j].nRewrite, spans[j].nKl, klInit[j], klFactor, parts[i]);
        if (!klInit[j]) klInit[j] = logps;
        loss += parts[i].nll + parts[i].kl;
      });
      return { loss, grad: new Tensor(grad, logits.shape) };
    };
    const res = await gradients(model, batch, lossFn, [site.valueHook], { ...run, hooks: [[site.valueHook, addDelta]], logits: 'all' });
    const g = res.grads.get(site.valueHook)!; // [B,T,W]
    const T = g.shape[1];
    return active.map((j, i) => {
      const v0 = vInit[j] ?? fail(`the run never reached ${site.valueHook}`);
      const delta = deltas[i];
      const v0n2 = norm(v0) ** 2;
      const dn = norm(delta);
      const weightDecay = (wd * dn) / v0n2;
      // d loss_j / d δ_j: the activation gradient at each of its rows' lookup positions, plus the weight decay's.
      const grad = new Float64Array(W);
      const b0 = firstRow.get(j)!;
      for (let b = b0; b < b0 + spans[j].nRewrite + spans[j].nKl; b++) {
        const off = (b * T + rows[b].lookup) * W;
        for (let k = 0; k < W; k++) grad[k] += g.data[off + k];
      }
      if (dn > 0) for (let k = 0; k < W; k++) grad[k] += (wd * delta[k]) / (dn * v0n2);
      const p = parts[i];
      const prob = p.nllEach.reduce((s, x) => s + Math.exp(-x), 0) / p.nllEach.length;
      return { loss: p.nll + p.kl + weightDecay, nll: p.nll, kl: p.kl, weightDecay, prob, grad };
    });
  };
  return { size: requests.length, vInit: (j) => vInit[j] ?? fail('evaluate the objective first'), evaluate };
}

type Parts = { nll: number; kl: number; nllEach: number[] };

/** Token-averaged NLL of the target on rows b0.. (mean over them) and its gradient, written into grad. */
function rewriteNll(logits: Tensor, grad: Float32Array, rows: Array<Row & { cut: number }>, b0: number, span: Span, out: Parts): void {
  const [, T, V] = logits.shape;
  const { nRewrite, targetIds } = span;
  for (let b = b0; b < b0 + nRewrite; b++) {
    let each = 0;
    targetIds.forEach((tok, m) => {
      const off = (b * T + rows[b].predictFrom! - rows[b].cut + m) * V;
      const { logZ, probs } = softmaxRow(logits.data, off, V);
      each += (logZ - logits.data[off + tok]) / targetIds.length;
      const scale = 1 / (targetIds.length * nRewrite);
      for (let v = 0; v < V; v++) grad[off + v] = probs[v] * scale;
      grad[off + tok] -= scale;
    });
    out.nllEach.push(each);
    out.nll += each / nRewrite;
  }
}

/** klFactor · mean over the KL rows b0.. of KL(P_now ‖ P_init) at their lookup, and its gradient; returns log P_now. */
function klTerm(logits: Tensor, grad: Float32Array, rows: Row[], b0: number, nKl: number, init: Float32Array[] | null, klFactor: number, out: Parts): Float32Array[] {
  const [, T, V] = logits.shape;
  const logps: Float32Array[] = [];
  for (let j = 0; j < nKl; j++) {
    const b = b0 + j;
    const off = (b * T + rows[b].lookup) * V;
    const { logZ, probs } = softmaxRow(logits.data, off, V);
    const logp = new Float32Array(V);
    for (let v = 0; v < V; v++) logp[v] = logits.data[off + v] - logZ;
    logps.push(logp);
    const p0 = init ? init[j] : logp;
    let mean = 0; // E_p[log p − log p_init]
    for (let v = 0; v < V; v++) mean += probs[v] * (logp[v] - p0[v]);
    out.kl += (klFactor * mean) / nKl;
    for (let v = 0; v < V; v++) grad[off + v] += (klFactor / nKl) * probs[v] * (logp[v] - p0[v] - mean);
  }
  return logps;
}

function fail(msg: string): never {
  throw new FactlensError(msg);
}
