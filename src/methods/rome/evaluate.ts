/**
 * Edit-and-score loop over CounterFact records: for each record, ROME-edit the model (a view; the
 * original is never touched, so every case starts from the unedited model), score the edited view
 * on the record's prompts, optionally run the generation checks, and summarise.
 */
import { CounterFactRecord, editRequestOf } from '../../data/counterfact';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { progress as progressBar } from '../../viz/progress';
import { CaseScores, scoreCase, summarize, Summary } from './counterfact-eval';
import { rome, RomeOptions, defaultLayer, normalizeRequest } from './edit';
import { optimizeValues } from './value';
import { contextTemplates } from './templates';
import { generationCheck, GenerationOptions } from './generation-checks';
import { DEFAULT_MATRIX, editSite, EditMatrix, parseMatrix } from './sites';
import { secondMoment, SecondMoment } from './stats';
import { checkpointedRows, CheckpointOption } from '../../runtime/run-log';
import { runSettings, unitKey } from '../../runtime/run-settings';
import { throwIfAborted } from '../../runtime/abort';

export interface CaseResult extends CaseScores {
  subject: string;
  targetNew: string;
  targetTrue: string;
  layer: number;
  matrix: EditMatrix;
  /** Final mean target probability of the v* optimisation, and its steps. */
  vStarProb: number;
  steps: number;
  editSeconds: number;
  evalSeconds: number;
  fluency?: number;
  mentionsNew?: number;
  mentionsTrue?: number;
  generations?: string[];
}

export interface EvaluationSummary extends Summary {
  model: string;
  matrix: EditMatrix;
  layer: number;
  fluency?: number;
  mentionsNew?: number;
  mentionsTrue?: number;
  secondsPerEdit: number;
  secondsPerEval: number;
}

export interface EvaluateOptions extends RomeOptions {
  /** Generation checks per case (off by default: ROME's sweeps skipped them too). */
  generation?: GenerationOptions | false;
  /** Progress bar (default true). */
  progress?: boolean;
  onCase?: (c: CaseResult) => void;
  /**
   * A run-log file (see runtime/run-log.ts): each finished case is appended durably, and a rerun
   * with the same path and settings resumes, editing only the records not yet done (onCase is not
   * called for cases read back).
   */
  checkpoint?: CheckpointOption;
  /**
   * Records whose v* are optimised together in one batched optimisation (optimizeValues; default 20,
   * 1: one by one). Also the checkpoint's unit of work: a group is appended when all of it is done.
   */
  valueBatch?: number;
}

export async function evaluateEdits(model: Model, records: CounterFactRecord[], opts: EvaluateOptions = {}): Promise<{ cases: CaseResult[]; summary: EvaluationSummary }> {
  const layer = opts.layer ?? defaultLayer(model);
  const matrix = opts.matrix === undefined ? DEFAULT_MATRIX[model.arch] : parseMatrix(opts.matrix);
  const site = editSite(model, layer, matrix);
  // Statistics once for the whole run (cached in memory and on disk).
  const stats = opts.mom2Adjustment === false ? undefined : opts.stats instanceof SecondMoment ? opts.stats : await secondMoment(opts.baseModel ?? model, site, { signal: opts.signal, ...(opts.stats ?? {}) });
  const bar = opts.progress === false ? null : progressBar(records.length, `ROME ${matrix}@L${layer} on ${model.name}`);
  let cases: CaseResult[] = [];
  try {
    const settings = () => runSettings(model, { ...opts, layer, matrix }, records);
    const keys = records.map((r, i) => unitKey(i, r.case_id));
    const templates = Array.isArray(opts.templates) ? opts.templates : await contextTemplates(opts.baseModel ?? model, opts.templates);
    const group = opts.valueBatch ?? 20;
    if (!(Number.isInteger(group) && group >= 1)) throw new FactlensError(`valueBatch must be a positive integer, got ${group}`);
    cases = await checkpointedRows(opts.checkpoint, 'rome.evaluateEdits', settings, keys, group, async (indices) => {
      throwIfAborted(opts.signal);
      const tv = Date.now();
      const requests = indices.map((i) => normalizeRequest(model, editRequestOf(records[i])));
      const values = await optimizeValues(model, site, requests, templates, opts);
      const valueSeconds = (Date.now() - tv) / 1000 / indices.length; // each record's share of the batched v*
      const out: CaseResult[] = [];
      for (const [k, i] of indices.entries()) {
        throwIfAborted(opts.signal);
        const r = records[i];
        const t0 = Date.now();
        const e = await rome(model, editRequestOf(r), { ...opts, layer, matrix, stats, templates, value: values[k] });
        const t1 = Date.now();
        const s = await scoreCase(e.model, r);
        const g = opts.generation ? await generationCheck(e.model, r, opts.generation) : null;
        const c: CaseResult = {
          ...s, subject: r.requested_rewrite.subject, targetNew: r.requested_rewrite.target_new.str, targetTrue: r.requested_rewrite.target_true.str,
          layer, matrix, vStarProb: e.diagnostics.trace[e.diagnostics.trace.length - 1].prob, steps: e.diagnostics.trace.length,
          editSeconds: valueSeconds + (t1 - t0) / 1000, evalSeconds: (Date.now() - t1) / 1000,
          ...(g ? { fluency: g.fluency, mentionsNew: g.mentionsNew, mentionsTrue: g.mentionsTrue, generations: g.texts } : {}),
        };
        opts.onCase?.(c);
        bar?.tick();
        out.push(c);
      }
      return out;
    });
  } finally {
    bar?.done();
  }
  const avg = (f: (c: CaseResult) => number | undefined) => {
    const xs = cases.map(f).filter((x): x is number => x !== undefined && !Number.isNaN(x));
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
  };
  const summary: EvaluationSummary = {
    model: model.name, matrix, layer, ...summarize(cases),
    secondsPerEdit: avg((c) => c.editSeconds) ?? NaN, secondsPerEval: avg((c) => c.evalSeconds) ?? NaN,
  };
  if (opts.generation) {
    summary.fluency = avg((c) => c.fluency);
    const mn = avg((c) => c.mentionsNew), mt = avg((c) => c.mentionsTrue);
    summary.mentionsNew = mn === undefined ? undefined : 100 * mn;
    summary.mentionsTrue = mt === undefined ? undefined : 100 * mt;
  }
  return { cases, summary };
}
