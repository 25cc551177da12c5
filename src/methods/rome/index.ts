/**
 * ROME (Meng et al. 2022) on Mamba (W_a, W_g, W_o) and GPT-NeoX/Pythia (W_down), as in
 * "Locating and Editing Factual Associations in Mamba" (paper-spec §3), with the CounterFact
 * evaluation and layer sweeps.
 */
export { editSite, parseMatrix, siteLabel, EDIT_MATRICES, DEFAULT_MATRIX, MATRIX_COLORS } from './sites';
export type { EditSite, EditMatrix } from './sites';
export { asTemplate, fill, subjectTokens, checkTemplate } from './subject';
export type { SubjectTokens } from './subject';
export { contextTemplates, PAPER_TEMPLATE_LENGTHS } from './templates';
export type { ContextTemplateOptions } from './templates';
export { wikitextCorpus, textCorpus, detokenizeWikitext } from './corpus';
export type { Corpus } from './corpus';
export { secondMoment, secondMoments, SecondMoment, clearStatsMemory, sampleTokens } from './stats';
export type { StatsOptions } from './stats';
export { cacheRoot, keyFingerprint, statsPath } from './stats-cache';
export { cholesky, choleskySolve } from './linalg';
export { computeKey, readSite, readHooks, contextRows, meanVector } from './key';
export type { LookupRow } from './key';
export { optimizeValue, optimizeValues, valueObjective, valueRows } from './value';
export type { ValueOptions, ValueStep, ValueResult, ValueObjective, ValueTarget, ValueRequest } from './value';
export { rome, romeSequential, normalizeRequest, applyRankOne, deltaWeight, defaultLayer } from './edit';
export type { EditRequest, EditResult, RomeOptions, EditDiagnostics } from './edit';
export { scoreCase, summarize, scoresText, scoreS, sDifference, continuationScores, harmonicMean } from './counterfact-eval';
export type { CaseScores, Summary, TargetScore } from './counterfact-eval';
export { generationCheck, ngramEntropy, mentions } from './generation-checks';
export type { GenerationCheck, GenerationOptions } from './generation-checks';
export { evaluateEdits } from './evaluate';
export type { CaseResult, EvaluationSummary, EvaluateOptions } from './evaluate';
export { romeLayerSweep } from './sweep';
export { sweepFigure, lossTraceFigure } from './figures';
export { topTokens, greedyCompletions } from './inspect';
export type { TopToken } from './inspect';
export type { SweepRow, LayerSweepOptions } from './sweep';
