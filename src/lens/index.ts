/** Notebook helpers over logits and the residual stream: top-k tables and the logit lens. */
export { topK } from './top-k';
export { logitLens, accumulatedResid } from './logit-lens';
export type { LensOptions, AccumulatedResid } from './logit-lens';
