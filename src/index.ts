/**
 * factlens: locate and edit factual associations in Mamba and GPT-NeoX/Pythia.
 * The public API, for notebooks (`import { ... } from '../src'`) and scripts.
 */
export { Model } from './runtime/model';
export type { ModelInput } from './runtime/model';
export { Tensor } from './runtime/tensor';
export { makeBatch, lastPositions } from './runtime/batch';
export type { Batch } from './runtime/batch';
export type { HookFn, HookContext, RunOptions, RunResult, MambaState } from './runtime/forward';
export { ActivationCache } from './runtime/cache';
export { resolveHook, allHookNames, hookDocs } from './runtime/hooks';
export type { Arch, HookDoc } from './runtime/hooks';
export { ARCHS } from './runtime/hooks';
export { TRANSFORMER_ADAPTERS } from './models/transformer-adapters';
export type { TransformerAdapter } from './models/transformer-adapters';
export { interventionHooks, layerWindow } from './runtime/interventions';
export type { InterventionSpec, Positions } from './runtime/interventions';
export { sweep, autoBatchSize } from './runtime/sweep';
export type { SweepOptions } from './runtime/sweep';
export type { StatePatch } from './runtime/state-patch';
export { gradients, nextTokenNll, targetNll, jacobian, vjp, softmaxRow } from './runtime/grad';
export type { LogitLoss, GradientResult, Site } from './runtime/grad';
export { generate, rng } from './runtime/generate';
export type { GenerateOptions, Generation } from './runtime/generate';
export { Tape } from './runtime/tape';
export { InterruptedError, throwIfAborted, isAborted } from './runtime/abort';
export type { AbortOptions } from './runtime/abort';
export { FactlensError } from './errors';
export * from './io';
export { runLayerSlice } from './runtime/layer-slice';

// Conveniences for TransformerLens / nnsight users: names, logits rows, top-k tables, the logit lens, subjects by string.
export { getActName } from './runtime/act-name';
export { logSoftmax, softmax, logSumExp, argmax, topKIndices, nll, probOf, klDivergence, logitsAt } from './runtime/logits';
export type { LogitsRow } from './runtime/logits';
export { topK, logitLens, accumulatedResid } from './lens';
export type { LensOptions, AccumulatedResid } from './lens';
export { findSubject } from './data/find-subject';
export type { SubjectTokens } from './data/find-subject';
export type { SubjectPositions, InterventionOp } from './runtime/interventions';
export { HookError } from './runtime/hook-guard';
export { resolveWeightName } from './runtime/weight-names';
export { cacheBytes } from './runtime/cache-size';
export { mambaStateAt, resumeCacheNames } from './runtime/resume';
export { ssmLayout } from './models/ssm';
export type { SsmLayout } from './models/ssm';

// Data: relation files, CounterFact, known-fact filters, subject spans.
export { loadRelation, loadRelations, listRelations, fillTemplate, PAPER_TRACING_RELATIONS } from './data/relations';
export type { Relation, RelationSample, RelationType } from './data/relations';
export { loadCounterFact, knownRecords, editRequestOf, rewritePrompt } from './data/counterfact';
export type { CounterFactRecord } from './data/counterfact';
export { knownFacts, isNontrivialPrefix } from './data/known-facts';
export { tokenSpan, subjectSpan } from './data/subject-span';
export type { TokenSpan } from './data/subject-span';

// The paper's four methods, one namespace each (e.g. `rome.applyEdit`, `causalTracing.traceFacts`).
export * as causalTracing from './methods/causal-tracing';
export * as rome from './methods/rome';
export * as memit from './methods/memit';
export * as lre from './methods/lre';
export * as informationFlow from './methods/information-flow';
export * as viz from './viz';
export * as stats from './stats';
export * as attribution from './methods/attribution';
