/**
 * Layer sweeps (the paper's "ROME performance" figure, §3.6): edit every record at each layer of
 * each editable matrix and summarise ES / PS / NS / S per (matrix, layer). Statistics for all
 * sites come from one pass over the corpus (figures.ts draws the result).
 */
import type { CounterFactRecord } from '../../data/counterfact';
import type { Model } from '../../runtime/model';
import { progress as progressBar } from '../../viz/progress';
import { evaluateEdits, EvaluateOptions, EvaluationSummary, CaseResult } from './evaluate';
import { EDIT_MATRICES, editSite, EditMatrix, parseMatrix } from './sites';
import { SecondMoment, secondMoments, StatsOptions } from './stats';
import { RunLog, withRunLog } from '../../runtime/run-log';
import { runSettings } from '../../runtime/run-settings';

export interface LayerSweepOptions extends Omit<EvaluateOptions, 'layer' | 'matrix' | 'stats'> {
  /** Layers to edit (default all). */
  layers?: number[];
  /** Matrices (default every editable matrix of the architecture). */
  matrices?: Array<EditMatrix | string>;
  stats?: StatsOptions;
}

export interface SweepRow extends EvaluationSummary {
  arch: string;
}

export async function romeLayerSweep(model: Model, records: CounterFactRecord[], opts: LayerSweepOptions = {}): Promise<{ rows: SweepRow[]; cases: CaseResult[] }> {
  const layers = opts.layers ?? Array.from({ length: model.nLayers }, (_, l) => l);
  const matrices = (opts.matrices ?? EDIT_MATRICES[model.arch]).map(parseMatrix);
  const sites = matrices.flatMap((m) => layers.map((l) => editSite(model, l, m)));
  const useC = opts.mom2Adjustment !== false;
  const stats: SecondMoment[] = useC ? await secondMoments(opts.baseModel ?? model, sites, { signal: opts.signal, ...(opts.stats ?? {}) }) : [];
  const rows: SweepRow[] = [];
  const cases: CaseResult[] = [];
  const bar = opts.progress === false ? null : progressBar(sites.length * records.length, `ROME layer sweep on ${model.name}`);
  // One run log for the whole sweep (units: record × site), shared by its evaluateEdits calls.
  const sweepSites = async (log?: RunLog<unknown>, prefix = '') => {
    for (const [i, site] of sites.entries()) {
      const checkpoint = log ? { log, prefix: `${prefix}${site.matrix}@${site.layer} ` } : undefined;
      const res = await evaluateEdits(model, records, {
        ...opts, layer: site.layer, matrix: site.matrix, stats: useC ? stats[i] : undefined, progress: false, checkpoint,
        onCase: (c) => { bar?.tick(); opts.onCase?.(c); },
      });
      rows.push({ ...res.summary, arch: model.arch });
      cases.push(...res.cases);
    }
  };
  try {
    if (typeof opts.checkpoint === 'string') await withRunLog(opts.checkpoint, 'rome.romeLayerSweep', runSettings(model, { ...opts, layers, matrices }, records), sweepSites);
    else await sweepSites(opts.checkpoint?.log, opts.checkpoint?.prefix);
  } finally {
    bar?.done();
  }
  return { rows, cases };
}
