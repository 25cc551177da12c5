/**
 * Mass editing: MEMIT (Meng et al. 2023) and EMMET (Gupta et al. 2024) on Mamba (W_o, W_a, W_g) and
 * GPT-NeoX/Pythia (W_down), with the CounterFact evaluation over batch sizes (docs/memit.md).
 */
export { memit, optimizeDeltas, residualTarget, writesResidual, scaledUpdateWeight } from './memit';
export type { MemitOptions, MemitResult, LayerDiagnostics } from './memit';
export { leastSquaresUpdate, addToRows } from './update';
export type { LayerUpdate, MassEditAlgorithm } from './update';
export { defaultLayers, checkLayers } from './layers';
export { templateKeys, bareRows, readHookRows } from './rows';
export { scalingCurve } from './scaling';
export type { ScalingOptions, ScalingRow, ScalingCase, MassEditMethod } from './scaling';
export { scalingFigure } from './figures';
