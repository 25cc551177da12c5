// Summary statistics for notebook verdicts: means with standard errors and bootstrap intervals.
export { estimate, formatEstimate, round, clearlyDiffers } from './estimate';
export type { Estimate, EstimateOptions, FormatOptions } from './estimate';
