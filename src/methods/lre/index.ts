/**
 * Linear relational embeddings (Hernandez et al. 2023; paper-spec §4): estimate
 * ẑ = β·J h + b from the model's own Jacobians, measure faithfulness and
 * causality, sweep layers.
 */
export { EOS_PREFIX, makeIclPrompt, iclContext, subjectPrompt, isNontrivialPrefix, shuffled } from './prompts';
export type { SubjectPrompt } from './prompts';
export { hStream, zStream, streamHook, lreLayers, layerLabel } from './sites';
export type { LreLayer } from './sites';
export { encodePrompts, runFrom, streamAt, streamLast } from './encode';
export type { EncodedPrompt, RunRow, RunFromResult } from './encode';
export { streamJacobian, streamJacobians, firstOrderApprox, firstOrderApproxes } from './jacobian';
export type { FirstOrderApprox } from './jacobian';
export { estimateLre, estimateLres, estimateFromEncoded, trainingPrompts } from './estimator';
export type { EstimateOptions } from './estimator';
export { LinearRelation, combine, decodeTopK, topK } from './operator';
export type { LreInfo, TokenPrediction } from './operator';
export { recallAtK, betaGrid, rankGrid, faithfulness, causality, editTargets, modelPredictions } from './metrics';
export type { LreTest, FaithfulnessResult, CausalityResult } from './metrics';
export { sweepRelation, prepareTrial, decodeZ } from './sweep';
export type { SweepSettings, SweepRow, TrialData } from './sweep';
export * as linalg from './linalg';
export { layerCurves, relationSummary, relationTitle, sweepFigure, relationBars, sortedRelations } from './figures';
export type { LayerPoint, RelationBest } from './figures';
export { PAPER_RELATION_BARS, PAPER_SWEEP_PEAKS, PAPER_GOOD_RANGE } from './paper';
