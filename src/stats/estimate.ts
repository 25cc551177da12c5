// A sample mean with its uncertainty, for verdicts in notebook text: "55.0 ± 3.1 (n = 50)".
// The standard error is the textbook s/√n; the interval is a seeded percentile bootstrap, so it
// needs no normality assumption and the same data always print the same interval.
import { FactlensError } from '../errors';
import { BootstrapOptions, bootstrapInterval } from './bootstrap';

export interface Estimate {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator); 0 when n = 1. */
  std: number;
  /** Standard error of the mean, std/√n. */
  se: number;
  /** Percentile-bootstrap interval of the mean at `level` (default 95 %). */
  lo: number;
  hi: number;
  level: number;
}

export type EstimateOptions = BootstrapOptions;

/** Mean, standard error and bootstrap interval of `values` (non-finite values are refused). */
export function estimate(values: ArrayLike<number>, opts: EstimateOptions = {}): Estimate {
  const { level = 0.95, resamples = 2000, seed = 0 } = opts;
  const n = values.length;
  if (n === 0) throw new FactlensError('estimate: values is empty');
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i])) throw new FactlensError(`estimate: values[${i}] is ${values[i]}`);
    sum += values[i];
  }
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  const { lo, hi } = bootstrapInterval(n, (units) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[units[i]];
    return s / n;
  }, { level, resamples, seed });
  return { n, mean, std, se: std / Math.sqrt(n), lo, hi, level };
}

export interface FormatOptions {
  /** Decimal places (default 1). */
  digits?: number;
  /** Multiply before printing, e.g. 100 for fractions shown as percentages (default 1). */
  scale?: number;
  /** 'se' prints mean ± se; 'ci' prints mean [lo, hi] (default 'se'). */
  style?: 'se' | 'ci';
}

/** "55.0 ± 3.1 (n = 50)" or "55.0 [49.2, 61.0] (n = 50)", rounded, never 55.00000000000001. */
export function formatEstimate(e: Estimate, opts: FormatOptions = {}): string {
  const { digits = 1, scale = 1, style = 'se' } = opts;
  const f = (x: number) => round(x * scale, digits);
  const body = style === 'se' ? `${f(e.mean)} ± ${f(e.se)}` : `${f(e.mean)} [${f(e.lo)}, ${f(e.hi)}]`;
  return `${body} (n = ${e.n})`;
}

/** A number rounded for prose: fixed `digits` decimals, and no "-0.0". */
export function round(x: number, digits = 1): string {
  const s = x.toFixed(digits);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** Whether two estimates' bootstrap intervals are disjoint: the only case a verdict says "higher". */
export function clearlyDiffers(a: Estimate, b: Estimate): boolean {
  return a.lo > b.hi || b.lo > a.hi;
}
