/**
 * Causal tracing (activation patching) for Mamba and GPT-NeoX/Pythia, as in "Locating and Editing
 * Factual Associations in Mamba" §3 and ROME: corrupt the subject, restore one state of the clean
 * run at a time, and see where p(answer) comes back.
 */
export { tracePrompt, tokenRange, alignPair, eosId } from './prompts';
export type { TracePrompt, AlignedPair } from './prompts';
export {
  altSubjectCorruption, noiseCorruption, subjectEmbeddingStd, chooseAltSubjects, alignsWith, hashString,
} from './corruption';
export type { Corruption, CorruptedRun, NoiseOptions, PromptOptions, AltChoiceOptions, FactRow } from './corruption';
export { traceKinds, kindInfo, scaledWindow, restoredLayers, PAPER_WINDOW, PAPER_LAYERS } from './kinds';
export type { TraceKind, KindInfo } from './kinds';
export { indirectEffect, effectStatus, normalizeGrid, DEFAULT_MIN_GAP } from './effects';
export type { EffectStatus } from './effects';
export { traceCorruption, traceMany, restoreStates, traceTable, traceSummary, noiseSpecs } from './trace';
export type { TraceOptions, TraceResult } from './trace';
export { groupTokens, averageIndirectEffects, promptEffectsAt, subtractAie, aieTable, peak, AIE_GROUPS, AIE_SUBJECT_ROWS } from './aie';
export type { Aie, AieOptions } from './aie';
export { traceFacts, tracesOfKind, averageByKind, roundRobin } from './facts';
export type { TraceFactsOptions, FactTraces } from './facts';
export { traceHeatmap, traceHeatmaps, aieHeatmap } from './figures';
export type { TraceFigureOptions } from './figures';
