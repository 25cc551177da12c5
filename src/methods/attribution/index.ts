/**
 * Attribution patching (AtP, AtP*, integrated gradients) for every hook kind of both
 * architectures, its validation against exact patching, and Mamba's hidden attention.
 * See docs/attribution.md.
 */
export { attributionPatching } from './atp';
export type { AttributionOptions, AttributionMethod, KindAttribution, PairAttribution } from './atp';
export { probMetric, logProbMetric, logitDiffMetric, metricByName, metricLoss } from './metrics';
export type { AttributionMetric, MetricName } from './metrics';
export { attributionKinds, selectKinds } from './kinds';
export type { AttributionKind } from './kinds';
export type { PromptPair, Direction } from './pairs';
export { exactPatching } from './exact';
export type { ExactOptions, PairExact } from './exact';
export { compareWithExact } from './compare';
export type { CompareOptions, Comparison } from './compare';
export { pearson, spearman, ranks, topIndices } from './agreement';
export { hiddenAttention, hiddenAttentionOf, scanInputs } from './hidden-attention';
export type { HiddenAttention, HiddenAttentionOptions, HiddenAggregate, ScanInputs } from './hidden-attention';
export { factPairs } from './fact-pairs';
export type { FactPair } from './fact-pairs';
