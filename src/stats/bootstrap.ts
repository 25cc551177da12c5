// The percentile bootstrap, one place for every interval in the notebooks: resample n units with
// replacement (seeded, so the same data always print the same interval) and read the statistic's
// quantiles. Units are whatever is independent: records for a mean, prompt pairs for a correlation
// over their cells (cells of one pair are not independent, so they are resampled together).
import { FactlensError } from '../errors';
import { rng } from '../runtime/generate';

export interface BootstrapOptions {
  /** Confidence level of the interval (default 0.95). */
  level?: number;
  /** Resamples (default 2000). */
  resamples?: number;
  seed?: number;
}

export interface Interval {
  lo: number;
  hi: number;
  level: number;
}

/** Percentile interval of `statistic` over resamples of units 0..n−1 (each call gets n drawn indices). */
export function bootstrapInterval(n: number, statistic: (units: Int32Array) => number, opts: BootstrapOptions = {}): Interval {
  const { level = 0.95, resamples = 2000, seed = 0 } = opts;
  if (!(Number.isInteger(n) && n >= 1)) throw new FactlensError(`bootstrap: needs at least one unit, got ${n}`);
  if (!(level > 0 && level < 1)) throw new FactlensError(`bootstrap: level must be in (0, 1), got ${level}`);
  if (!Number.isInteger(resamples) || resamples < 1 || resamples > 1e6) throw new FactlensError(`bootstrap: resamples must be an integer in [1, 1e6], got ${resamples}`);
  const random = rng(seed);
  const units = new Int32Array(n); // [n] one resample's unit indices
  const stats = new Float64Array(resamples); // [resamples]
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) units[i] = Math.floor(random() * n);
    stats[r] = statistic(units);
  }
  stats.sort();
  const at = (q: number) => stats[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))];
  return { lo: at((1 - level) / 2), hi: at(1 - (1 - level) / 2), level };
}
