// Summary statistics for notebook verdicts: means with standard errors and bootstrap intervals.
export { estimate, formatEstimate, round, clearlyDiffers } from './estimate';
export type { Estimate, EstimateOptions, FormatOptions } from './estimate';
export { bootstrapInterval } from './bootstrap';
export type { BootstrapOptions, Interval } from './bootstrap';
