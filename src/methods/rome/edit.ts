/**
 * ROME: one rank-one edit of one matrix (paper-spec §3.3).
 *   u = C⁻¹k̄ / ‖C⁻¹k̄‖,  v* from optimizeValue,  (k_cur, v_cur) at the bare prompt's subject token,
 *   w = (v* − v_cur) / (uᵀk_cur),  ΔW = w uᵀ on the matrix's rows.
 * The "r-rome" variant (Rebuilding ROME, Gupta et al. 2024) uses the template-averaged key and
 * output instead of the bare prompt's: w = (v* − v̄) / (uᵀk̄), v̄ = mean W k (+b) = W k̄ (+b).
 * The result holds an edited view of the model (Model.withWeights): the original is untouched,
 * so restoring is using the original object, and edits chain (romeSequential).
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import { computeKey, readSite } from './key';
import { dot, norm } from './linalg';
import { EditMatrix, editSite, EditSite } from './sites';
import { SecondMoment, secondMoment, StatsOptions } from './stats';
import { asTemplate, fill, subjectTokens } from './subject';
import { ContextTemplateOptions, contextTemplates } from './templates';
import { optimizeValue, ValueOptions, ValueResult, ValueStep } from './value';

export interface EditRequest {
  /** "{} is located in the city of", or the prompt with the subject written in. */
  prompt: string;
  subject: string;
  /** The new object; a leading space is added if missing. */
  target: string;
  /** The current (true) object, if known: a target equal to it is an error. */
  trueTarget?: string;
}

export interface NormalizedRequest {
  template: string;
  subject: string;
  /** Target with its leading space, and its token ids τ. */
  target: string;
  targetIds: number[];
  trueTarget?: string;
  /** template.format(subject) */
  prompt: string;
}

export interface RomeOptions extends ValueOptions {
  layer?: number;
  matrix?: EditMatrix | string;
  /** 'rome' (paper, default) or 'r-rome' (Rebuilding ROME's update). */
  variant?: 'rome' | 'r-rome';
  /** Precomputed statistics, or options for computing/caching them. */
  stats?: SecondMoment | StatsOptions;
  /** Whether to use C at all (ROME's mom2_adjustment; default true). Without it u = k̄/‖k̄‖. */
  mom2Adjustment?: boolean;
  /** Model to take statistics and context templates from (default: the edited model; sequential edits pass the original). */
  baseModel?: Model;
  /** Context templates: the strings themselves, or how to sample them. */
  templates?: string[] | ContextTemplateOptions;
  /**
   * v* already optimised for this request, site, model and templates (optimizeValues, as the layer
   * sweep does for many records at once): used instead of optimising it here.
   */
  value?: ValueResult;
}

export interface EditDiagnostics {
  variant: 'rome' | 'r-rome';
  templates: string[];
  /** Subject token span in the bare prompt. */
  subjectTokens: { first: number; last: number; exact: boolean; tokens: string[] };
  trace: ValueStep[];
  stopReason: string;
  kBarNorm: number;
  kCurNorm: number;
  /** uᵀk used as the denominator. */
  uDotK: number;
  vInitNorm: number;
  deltaNorm: number;
  vStarNorm: number;
  /** ‖ΔW‖_F = ‖w‖ (u is a unit vector). */
  updateNorm: number;
  weightNorm: number;
  statsSamples: number | null;
  statsFromCache: boolean | null;
  seconds: { stats: number; templates: number; key: number; value: number; total: number };
}

export interface EditResult {
  /** The edited view; the model passed in is unchanged. */
  model: Model;
  request: NormalizedRequest;
  site: EditSite;
  /** ΔW = w uᵀ added to rows [rows[0], rows[1]) of `weight`. */
  delta: { weight: string; rows: [number, number]; u: Float32Array; w: Float32Array };
  vStar: Float32Array;
  diagnostics: EditDiagnostics;
}

export function normalizeRequest(model: Model, r: EditRequest): NormalizedRequest {
  if (!r || typeof r.prompt !== 'string' || typeof r.subject !== 'string' || typeof r.target !== 'string') {
    throw new FactlensError('an edit request needs prompt, subject and target strings');
  }
  const template = asTemplate(r.prompt, r.subject);
  if (!r.target.trim()) throw new FactlensError(`the target for "${fill(template, r.subject)}" is empty`);
  const target = r.target.startsWith(' ') ? r.target : ' ' + r.target;
  if (r.trueTarget !== undefined && r.trueTarget.trim().toLowerCase() === target.trim().toLowerCase()) {
    throw new FactlensError(`the new target "${target.trim()}" equals the true object: nothing to edit`);
  }
  const targetIds = model.encode(target);
  return { template, subject: r.subject, target, targetIds, trueTarget: r.trueTarget, prompt: fill(template, r.subject) };
}

/** The rank-one update applied to a weight: a new tensor W + w uᵀ on the given rows. */
export function applyRankOne(W: Tensor, rows: [number, number], u: Float32Array, w: Float32Array): Tensor {
  const out = W.clone();
  const inDim = W.shape[1];
  if (u.length !== inDim || w.length !== rows[1] - rows[0]) throw new FactlensError(`rank-one update shapes: u ${u.length}, w ${w.length} for rows ${rows} of [${W.shape}]`);
  for (let r = rows[0]; r < rows[1]; r++) {
    const wr = w[r - rows[0]];
    const off = r * inDim;
    for (let c = 0; c < inDim; c++) out.data[off + c] += wr * u[c];
  }
  return out;
}

/** Does the model already produce the target (every target token is the argmax by teacher forcing)? */
async function alreadyPredicts(model: Model, prompt: string, targetIds: number[]): Promise<boolean> {
  const p = model.encode(prompt);
  const logits = (await model.run([p.concat(targetIds.slice(0, -1))], { logits: 'all' })).logits!; // [1,T,V]
  const V = logits.shape[2];
  return targetIds.every((tok, m) => {
    const row = logits.data.subarray((p.length - 1 + m) * V, (p.length + m) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    return best === tok;
  });
}

export async function rome(model: Model, request: EditRequest, opts: RomeOptions = {}): Promise<EditResult> {
  const t0 = Date.now();
  const req = normalizeRequest(model, request);
  const base = opts.baseModel ?? model;
  const site = editSite(model, opts.layer ?? defaultLayer(model), opts.matrix);
  if (req.trueTarget === undefined && (await alreadyPredicts(model, req.prompt, req.targetIds))) {
    throw new FactlensError(`the model already completes "${req.prompt}" with "${req.target.trim()}" (the target equals the true object): nothing to edit`);
  }
  const variant = opts.variant ?? 'rome';
  const secs = { stats: 0, templates: 0, key: 0, value: 0, total: 0 };
  let t = Date.now();
  const templates = Array.isArray(opts.templates) ? opts.templates : await contextTemplates(base, opts.templates);
  if (!templates.length || templates[0] !== '{}') throw new FactlensError('context templates must start with "{}" (the bare prompt)');
  secs.templates = (Date.now() - t) / 1000;

  t = Date.now();
  const useC = opts.mom2Adjustment ?? true;
  const stats = !useC ? null : opts.stats instanceof SecondMoment ? opts.stats : await secondMoment(base, site, opts.stats ?? {});
  if (stats && stats.dim !== site.keyDim) throw new FactlensError(`statistics have dimension ${stats.dim}, the key of ${site.matrix} has ${site.keyDim}`);
  if (stats && stats.key.keyHook !== site.keyHook) throw new FactlensError(`statistics are for ${stats.key.keyHook}, the edit needs ${site.keyHook}`);
  secs.stats = (Date.now() - t) / 1000;

  t = Date.now();
  const key = await computeKey(model, site, req.template, req.subject, templates);
  const cInvK = stats ? await stats.solve(key.kBar) : Float64Array.from(key.kBar);
  const cn = norm(cInvK);
  const u = Float32Array.from(cInvK, (x) => x / cn);
  secs.key = (Date.now() - t) / 1000;

  t = Date.now();
  if (opts.value && opts.value.vStar.length !== site.valueDim) throw new FactlensError(`value: v* has ${opts.value.vStar.length} entries, ${site.valueHook} has ${site.valueDim}`);
  const value = opts.value ?? (await optimizeValue(model, site, req.template, req.subject, req.targetIds, templates, opts));
  secs.value = (Date.now() - t) / 1000;

  const bare = subjectTokens(model, req.template, req.subject);
  const cur = await readSite(model, site, [{ ids: bare.ids, lookup: bare.last }]);
  const kCur = variant === 'r-rome' ? key.kBar : cur.keys[0];
  const vCur = variant === 'r-rome' ? key.vBar : cur.values[0];
  const denom = dot(u, kCur);
  if (!(Math.abs(denom) > 0)) throw new FactlensError(`uᵀk = ${denom}: the key is orthogonal to C⁻¹k̄, cannot edit`);
  const w = Float32Array.from(value.vStar, (x, i) => (x - vCur[i]) / denom);
  const W = model.weight(site.weight);
  const edited = model.withWeights(new Map([[site.weight, applyRankOne(W, site.rows, u, w)]]));
  secs.total = (Date.now() - t0) / 1000;
  return {
    model: edited,
    request: req,
    site,
    delta: { weight: site.weight, rows: site.rows, u, w },
    vStar: value.vStar,
    diagnostics: {
      variant, templates,
      subjectTokens: { first: bare.first, last: bare.last, exact: bare.exact, tokens: model.tokenStrings(bare.ids.slice(bare.first, bare.last + 1)) },
      trace: value.trace, stopReason: value.stopReason,
      kBarNorm: norm(key.kBar), kCurNorm: norm(kCur), uDotK: denom,
      vInitNorm: norm(value.vInit), deltaNorm: norm(value.delta), vStarNorm: norm(value.vStar),
      updateNorm: norm(w), weightNorm: norm(sliceRows(W, site.rows)),
      statsSamples: stats?.count ?? null, statsFromCache: stats ? stats.fromCache : null,
      seconds: secs,
    },
  };
}

/** The paper's layer 15, scaled to the model's depth (15 of 64 for Mamba-2.8b, 15 of 32 for Pythia-2.8b). */
export function defaultLayer(model: Model): number {
  return Math.min(model.nLayers - 1, Math.round((15 * model.nLayers) / (model.arch === 'mamba' ? 64 : 32)));
}

function sliceRows(W: Tensor, rows: [number, number]): Float32Array {
  const inDim = W.shape[1];
  return W.data.subarray(rows[0] * inDim, rows[1] * inDim);
}

/** Dense ΔW [rows, in] of an edit (for inspection; the edit itself never materialises it separately). */
export function deltaWeight(e: EditResult): Tensor {
  const { u, w } = e.delta;
  const out = new Float32Array(w.length * u.length);
  for (let r = 0; r < w.length; r++) for (let c = 0; c < u.length; c++) out[r * u.length + c] = w[r] * u[c];
  return new Tensor(out, [w.length, u.length]);
}

/**
 * Several edits one after another, each on the previous edit's model; statistics and context
 * templates come from the original model (as ROME's sequential use does). Returns every step.
 */
export async function romeSequential(model: Model, requests: EditRequest[], opts: RomeOptions = {}): Promise<EditResult[]> {
  const out: EditResult[] = [];
  let current = model;
  for (const r of requests) {
    const e = await rome(current, r, { ...opts, baseModel: opts.baseModel ?? model });
    out.push(e);
    current = e.model;
  }
  return out;
}
