/**
 * MEMIT (Meng et al. 2023) and EMMET (Gupta et al. 2024): many edits at once, spread over a range
 * of layers (docs/memit.md). For requests j = 1..n and layers l_1 < … < l_L of one matrix kind:
 *   1. δ_j: ROME's v* optimisation (rome/value.ts), with δ added to the residual stream after the
 *      last layer l_L (target 'residual', MEMIT's compute_z) or to the matrix's output there
 *      ('module', ROME's normalisation); z_j = h_{l_L}(unedited) + δ_j.
 *   2. for each layer l_i in order, on the model edited at the layers before it:
 *      keys k̄_j (mean over context templates), residuals r_j = (z_j − h_{l_L}(current)) / (L − i + 1),
 *      one least-squares update (update.ts) with the layer's cached C = E[kkᵀ].
 * W_o and W_down write into the residual stream, so this is MEMIT exactly. W_a and W_g do not (their
 * output goes through the conv, the scan and the gate), so there step 1 happens at every layer l_i,
 * at that layer's own output on the model edited so far, and the layer takes 1/(L − i + 1) of it.
 * The result is an edited view (Model.withWeights): the model passed in is untouched.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { normalizeRequest, EditRequest, NormalizedRequest } from '../rome/edit';
import { EditMatrix, editSite, EditSite, parseMatrix, DEFAULT_MATRIX } from '../rome/sites';
import { SecondMoment, secondMoments, StatsOptions } from '../rome/stats';
import { ContextTemplateOptions, contextTemplates } from '../rome/templates';
import { optimizeValues, ValueOptions, ValueResult, ValueTarget } from '../rome/value';
import { norm } from '../rome/linalg';
import { checkLayers, defaultLayers } from './layers';
import { bareRows, readHookRows, templateKeys } from './rows';
import { addToRows, leastSquaresUpdate, MassEditAlgorithm } from './update';

export interface MemitOptions extends ValueOptions {
  matrix?: EditMatrix | string;
  /** Layers to edit (default: defaultLayers, ending at ROME's default layer). */
  layers?: number[];
  /** 'memit' (default) or 'emmet' (equality-constrained). */
  algorithm?: MassEditAlgorithm;
  /**
   * MEMIT's λ = mom2_update_weight. Default: MEMIT's GPT-J λ = 15,000 at 16,384-dim keys, scaled by
   * the key dimension (kᵀC⁻¹k ≈ dIn for a typical key, so λ/dIn sets the edit/preservation balance).
   */
  mom2UpdateWeight?: number;
  /** EMMET's ridge μ on KᵀC⁻¹K (default 0, the paper's exact constraint). */
  emmetRidge?: number;
  /** Use C at all (default true); without it C = I. */
  mom2Adjustment?: boolean;
  /** One SecondMoment per layer (in `layers` order), or options for computing/caching them. */
  stats?: SecondMoment[] | StatsOptions;
  /** Where δ is optimised for W_o / W_down (default 'residual'); W_a / W_g only allow 'module'. */
  target?: 'residual' | 'module';
  /** Context templates: the strings themselves, or how to sample them (ROME's by default). */
  templates?: string[] | ContextTemplateOptions;
  /** Model to take statistics and templates from (default: the model edited). */
  baseModel?: Model;
  /**
   * δ of each request (aligned with `requests`) from an earlier `optimizeDeltas` on the same unedited
   * model, site and options: z does not depend on the other requests, so batches can share them.
   */
  deltas?: ValueResult[];
  onLayer?: (l: LayerDiagnostics) => void;
}

export interface LayerDiagnostics {
  layer: number;
  weight: string;
  /** Mean ‖r_j‖ of the residuals this layer was asked to write. */
  residualNorm: number;
  /** ‖ΔW‖_F and ‖W‖_F of the edited rows. */
  updateNorm: number;
  weightNorm: number;
  ridge: number;
  jitter: number;
  seconds: number;
}

export interface MemitResult {
  /** The edited view; the model passed in is unchanged. */
  model: Model;
  requests: NormalizedRequest[];
  sites: EditSite[];
  algorithm: MassEditAlgorithm;
  target: 'residual' | 'module';
  /** The δ optimisations of the last layer (residual sites) or of the first layer (W_a / W_g). */
  deltas: ValueResult[];
  layers: LayerDiagnostics[];
  templates: string[];
  seconds: { stats: number; templates: number; deltas: number; total: number };
}

/** MEMIT's GPT-J λ (15,000 at 16,384-dim keys) at another key dimension. */
export const scaledUpdateWeight = (keyDim: number) => (15_000 * keyDim) / 16_384;

/** The matrices whose output is added to the residual stream as is. */
export const writesResidual = (m: EditMatrix) => m === 'W_o' || m === 'W_down';

/** The residual stream after a layer, as a place to add δ. */
export function residualTarget(model: Model, layer: number): ValueTarget {
  return { layer, valueHook: `layers.${layer}.resid_post`, valueDim: model.config.dModel };
}

/** δ (ROME's v* optimisation) for each request at one place of the model, batched over requests (rome/value.ts). */
export async function optimizeDeltas(model: Model, requests: NormalizedRequest[], at: ValueTarget, templates: string[], opts: ValueOptions = {}): Promise<ValueResult[]> {
  return optimizeValues(model, at, requests, templates, opts);
}

export async function memit(model: Model, requests: EditRequest[], opts: MemitOptions = {}): Promise<MemitResult> {
  const t0 = Date.now();
  if (!Array.isArray(requests) || !requests.length) throw new FactlensError('memit: requests must be a non-empty array of edit requests');
  const reqs = requests.map((r) => normalizeRequest(model, r));
  const base = opts.baseModel ?? model;
  const matrix = opts.matrix === undefined ? DEFAULT_MATRIX[model.arch] : parseMatrix(opts.matrix);
  const layers = checkLayers(model, opts.layers ?? defaultLayers(model));
  const sites = layers.map((l) => editSite(model, l, matrix));
  const residual = writesResidual(matrix);
  const target = opts.target ?? (residual ? 'residual' : 'module');
  if (target !== 'residual' && target !== 'module') throw new FactlensError(`memit: target must be 'residual' or 'module', got ${JSON.stringify(target)}`);
  if (!residual && target === 'residual') throw new FactlensError(`memit: ${matrix} does not write into the residual stream; use target 'module'`);
  const algorithm = opts.algorithm ?? 'memit';
  if (algorithm !== 'memit' && algorithm !== 'emmet') throw new FactlensError(`memit: algorithm must be 'memit' or 'emmet', got ${JSON.stringify(algorithm)}`);
  const ridge = algorithm === 'memit' ? opts.mom2UpdateWeight ?? scaledUpdateWeight(sites[0].keyDim) : opts.emmetRidge ?? 0;
  if (opts.deltas && opts.deltas.length !== reqs.length) throw new FactlensError(`memit: ${opts.deltas.length} deltas for ${reqs.length} requests`);
  if (opts.deltas && !residual && layers.length > 1) throw new FactlensError(`memit: precomputed deltas serve ${matrix} only with one layer (each layer optimises its own)`);
  const secs = { stats: 0, templates: 0, deltas: 0, total: 0 };

  let t = Date.now();
  const templates = Array.isArray(opts.templates) ? opts.templates : await contextTemplates(base, opts.templates);
  if (!templates.length || templates[0] !== '{}') throw new FactlensError('context templates must start with "{}" (the bare prompt)');
  secs.templates = (Date.now() - t) / 1000;

  t = Date.now();
  const stats = await layerStats(base, sites, opts);
  secs.stats = (Date.now() - t) / 1000;

  const rows = bareRows(model, reqs);
  const zLayer = layers[layers.length - 1];
  const zHook = residualTarget(model, zLayer).valueHook;
  t = Date.now();
  let firstDeltas: ValueResult[] | null = null;
  let z: Float32Array[] = [];
  if (residual) {
    firstDeltas = opts.deltas ?? (await optimizeDeltas(model, reqs, target === 'residual' ? residualTarget(model, zLayer) : sites[sites.length - 1], templates, opts));
    const hInit = await readHookRows(model, zLayer, zHook, rows); // n × [D]
    z = hInit.map((h, j) => Float32Array.from(h, (x, i) => x + firstDeltas![j].delta[i]));
  }
  secs.deltas = (Date.now() - t) / 1000;

  let current = model;
  const diags: LayerDiagnostics[] = [];
  for (const [i, site] of sites.entries()) {
    const tl = Date.now();
    const left = sites.length - i;
    const keys = await templateKeys(current, site, reqs, templates);
    let residuals: Float64Array[];
    if (residual) {
      const h = await readHookRows(current, zLayer, zHook, rows);
      residuals = z.map((zj, j) => Float64Array.from(zj, (x, c) => (x - h[j][c]) / left));
    } else {
      // z_l − v_l(current) is δ itself: δ starts from the current output at the bare prompt.
      const t1 = Date.now();
      const d = i === 0 && opts.deltas ? opts.deltas : await optimizeDeltas(current, reqs, site, templates, opts);
      secs.deltas += (Date.now() - t1) / 1000;
      if (i === 0) firstDeltas = d;
      residuals = d.map((dj) => Float64Array.from(dj.delta, (x) => x / left));
    }
    const upd = await leastSquaresUpdate(keys, residuals, stats[i], algorithm, ridge);
    const W = current.weight(site.weight);
    current = current.withWeights(new Map([[site.weight, addToRows(W, site.rows, upd)]]));
    const d: LayerDiagnostics = {
      layer: site.layer, weight: site.weight,
      residualNorm: residuals.reduce((s, r) => s + norm(r), 0) / residuals.length,
      updateNorm: norm(upd.delta), weightNorm: norm(W.data.subarray(site.rows[0] * W.shape[1], site.rows[1] * W.shape[1])),
      ridge: upd.ridge, jitter: upd.jitter, seconds: (Date.now() - tl) / 1000,
    };
    diags.push(d);
    opts.onLayer?.(d);
  }
  secs.total = (Date.now() - t0) / 1000;
  return { model: current, requests: reqs, sites, algorithm, target, deltas: firstDeltas!, layers: diags, templates, seconds: secs };
}

/** One SecondMoment per site (null everywhere without mom2 adjustment), from one corpus pass. */
async function layerStats(base: Model, sites: EditSite[], opts: MemitOptions): Promise<Array<SecondMoment | null>> {
  if (opts.mom2Adjustment === false) return sites.map(() => null);
  if (Array.isArray(opts.stats)) {
    if (opts.stats.length !== sites.length) throw new FactlensError(`memit: ${opts.stats.length} statistics for ${sites.length} layers`);
    opts.stats.forEach((s, i) => {
      if (!(s instanceof SecondMoment)) throw new FactlensError(`memit: stats[${i}] is not a SecondMoment`);
      if (s.key.keyHook !== sites[i].keyHook) throw new FactlensError(`memit: stats[${i}] are for ${s.key.keyHook}, layer ${sites[i].layer} needs ${sites[i].keyHook}`);
    });
    return opts.stats;
  }
  return secondMoments(base, sites, opts.stats ?? {});
}
