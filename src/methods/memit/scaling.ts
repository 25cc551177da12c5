/**
 * The MEMIT paper's scaling curve (docs/memit.md §4): CounterFact scores against the number of facts
 * edited at once. For each batch size b, the records are cut into consecutive batches of b (the
 * remainder is dropped), every batch is edited into the unedited model at once, and each record is
 * scored on the model its own batch produced; so every batch size scores the same records (when b
 * divides their number). Methods: MEMIT, EMMET, and sequential ROME (the batch's edits one after
 * another, each on the previous edit's model) at the last layer of the range.
 * For W_o / W_down the per-record δ does not depend on the batch, so MEMIT and EMMET optimise each
 * record's δ once and share it across batch sizes.
 */
import { FactlensError } from '../../errors';
import { CounterFactRecord, editRequestOf } from '../../data/counterfact';
import type { Model } from '../../runtime/model';
import { progress as progressBar } from '../../viz/progress';
import { CaseScores, scoreCase, summarize, Summary } from '../rome/counterfact-eval';
import { normalizeRequest, romeSequential } from '../rome/edit';
import { generationCheck, GenerationOptions } from '../rome/generation-checks';
import { DEFAULT_MATRIX, editSite, parseMatrix } from '../rome/sites';
import { secondMoments, SecondMoment } from '../rome/stats';
import { contextTemplates } from '../rome/templates';
import type { ValueResult } from '../rome/value';
import { checkLayers, defaultLayers } from './layers';
import { memit, MemitOptions, optimizeDeltas, residualTarget, writesResidual } from './memit';

export type MassEditMethod = 'memit' | 'emmet' | 'rome-sequential';

export interface ScalingOptions extends Omit<MemitOptions, 'algorithm' | 'deltas' | 'stats'> {
  /** Facts edited at once (e.g. [1, 10, 100, records.length]). */
  batchSizes: number[];
  methods?: MassEditMethod[];
  stats?: MemitOptions['stats'];
  /** Generation checks (fluency, consistency) on the first `generationRecords` records of each batch size. */
  generation?: GenerationOptions | false;
  generationRecords?: number;
  progress?: boolean;
}

export interface ScalingRow extends Summary {
  model: string;
  arch: string;
  method: MassEditMethod;
  matrix: string;
  /** "2,3,4" (sequential ROME: the last of them). */
  layers: string;
  batchSize: number;
  batches: number;
  fluency?: number;
  /** % of generations that mention the new object (our consistency stand-in, rome/generation-checks.ts). */
  mentionsNew?: number;
  secondsPerBatch: number;
}

export interface ScalingCase extends CaseScores {
  method: MassEditMethod;
  batchSize: number;
  batch: number;
}

const METHODS: MassEditMethod[] = ['memit', 'emmet', 'rome-sequential'];

export async function scalingCurve(model: Model, records: CounterFactRecord[], opts: ScalingOptions): Promise<{ rows: ScalingRow[]; cases: ScalingCase[] }> {
  if (!records.length) throw new FactlensError('scalingCurve: no records to edit');
  const sizes = opts.batchSizes;
  if (!Array.isArray(sizes) || !sizes.length || sizes.some((b) => !Number.isInteger(b) || b < 1 || b > records.length)) {
    throw new FactlensError(`scalingCurve: batchSizes must be integers in 1..${records.length} (the records given), got ${JSON.stringify(sizes)}`);
  }
  const methods = opts.methods ?? ['memit', 'rome-sequential'];
  for (const m of methods) if (!METHODS.includes(m)) throw new FactlensError(`scalingCurve: unknown method "${m}" (use ${METHODS.join(', ')})`);
  const matrix = opts.matrix === undefined ? DEFAULT_MATRIX[model.arch] : parseMatrix(opts.matrix);
  const layers = checkLayers(model, opts.layers ?? defaultLayers(model));
  const sites = layers.map((l) => editSite(model, l, matrix));
  const base = opts.baseModel ?? model;
  // Statistics and templates once for every method and batch.
  const stats: SecondMoment[] | undefined = opts.mom2Adjustment === false ? undefined : Array.isArray(opts.stats) ? opts.stats : await secondMoments(base, sites, opts.stats ?? {});
  const templates = Array.isArray(opts.templates) ? opts.templates : await contextTemplates(base, opts.templates);
  const requests = records.map(editRequestOf);
  let shared: ValueResult[] | null = null;
  const sharedDeltas = async (): Promise<ValueResult[] | undefined> => {
    if (!writesResidual(matrix) && layers.length > 1) return undefined;
    const at = writesResidual(matrix) && (opts.target ?? 'residual') === 'residual' ? residualTarget(model, layers[layers.length - 1]) : sites[sites.length - 1];
    shared ??= await optimizeDeltas(model, requests.map((r) => normalizeRequest(model, r)), at, templates, opts);
    return shared;
  };
  const rows: ScalingRow[] = [];
  const cases: ScalingCase[] = [];
  const total = methods.length * sizes.reduce((s, b) => s + Math.floor(records.length / b), 0);
  const bar = opts.progress === false ? null : progressBar(total, `mass editing on ${model.name}`);
  try {
    for (const method of methods) {
      for (const b of sizes) {
        const nBatches = Math.floor(records.length / b);
        const scored: ScalingCase[] = [];
        const gen: Array<{ fluency: number; mentionsNew: number }> = [];
        let seconds = 0;
        const deltas = method === 'rome-sequential' ? undefined : await sharedDeltas();
        for (let k = 0; k < nBatches; k++) {
          const batch = records.slice(k * b, (k + 1) * b);
          const t0 = Date.now();
          let edited: Model;
          if (method === 'rome-sequential') {
            const steps = await romeSequential(model, requests.slice(k * b, (k + 1) * b), { ...opts, layer: layers[layers.length - 1], matrix, stats: stats?.[stats.length - 1], templates });
            edited = steps[steps.length - 1].model;
          } else {
            edited = (await memit(model, requests.slice(k * b, (k + 1) * b), { ...opts, matrix, layers, algorithm: method, stats, templates, deltas: deltas?.slice(k * b, (k + 1) * b) })).model;
          }
          seconds += (Date.now() - t0) / 1000;
          for (const r of batch) {
            scored.push({ ...(await scoreCase(edited, r)), method, batchSize: b, batch: k });
            if (opts.generation && gen.length < (opts.generationRecords ?? 5)) gen.push(await generationCheck(edited, r, opts.generation));
          }
          bar?.tick();
        }
        cases.push(...scored);
        const row: ScalingRow = {
          model: model.name, arch: model.arch, method, matrix,
          layers: method === 'rome-sequential' ? String(layers[layers.length - 1]) : layers.join(','),
          batchSize: b, batches: nBatches, ...summarize(scored), secondsPerBatch: seconds / nBatches,
        };
        if (gen.length) {
          row.fluency = gen.reduce((s, g) => s + g.fluency, 0) / gen.length;
          row.mentionsNew = (100 * gen.reduce((s, g) => s + g.mentionsNew, 0)) / gen.length;
        }
        rows.push(row);
      }
    }
  } finally {
    bar?.done();
  }
  return { rows, cases };
}
