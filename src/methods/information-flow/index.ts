/**
 * Information flow: exact path blocking in Mamba's Conv+SSM, the paper's mean-ablation knockout,
 * attention knockout for GPT-NeoX, and the path-blocking (restoration) figure. See each file.
 */
export { pathBlockingHooks } from './path-blocking';
export type { PathBlock, BlockMode } from './path-blocking';
export { convSsmWeights, referenceSsmOut } from './reference';
export type { ConvSsmWeights } from './reference';
export { factPrompts, subjectRange, sourcePositions, SOURCE_SETS } from './prompts';
export type { FactPrompt, SourceSet, FactPromptOptions } from './prompts';
export { runVariants, recordRuns } from './runner';
export type { Variant, RowEdit, RunVariantsOptions, PromptActs } from './runner';
export { meanActivations, wikitextDocuments, WIKITEXT_FILE } from './means';
export type { MeanOptions } from './means';
export { mambaKnockout, knockoutTable } from './mamba-knockout';
export type { KnockoutOptions, MambaKnockoutOptions, Table } from './mamba-knockout';
export { attentionKnockout, attentionKnockoutEdits, CUT_SCORE } from './attention-knockout';
export { altSubjectPairs } from './corruption';
export type { CorruptedPair, PairOptions } from './corruption';
export { pathRestoration, PIN_HOOKS, PIN_LABELS } from './path-restoration';
export type { PinKind, RestoreToken, RestorationOptions } from './path-restoration';
export { meanSe, where } from './summary';
export { knockoutFigure, restorationFigure, restorationPanels } from './figures';
