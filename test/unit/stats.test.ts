import { describe, expect, it } from 'vitest';
import { estimate, formatEstimate, round, clearlyDiffers, bootstrapInterval } from '../../src/stats';

describe('estimate', () => {
  it('mean, sample std and standard error match the textbook formulas', () => {
    const e = estimate([1, 2, 3, 4, 10]);
    expect(e.n).toBe(5);
    expect(e.mean).toBeCloseTo(4, 12);
    const std = Math.sqrt(((3 ** 2) + (2 ** 2) + 1 + 0 + 36) / 4);
    expect(e.std).toBeCloseTo(std, 12);
    expect(e.se).toBeCloseTo(std / Math.sqrt(5), 12);
  });
  it('the bootstrap interval brackets the mean, narrows with n, and is reproducible', () => {
    const small = Array.from({ length: 10 }, (_, i) => (i % 2) * 100); // a 50 % success rate
    const large = Array.from({ length: 1000 }, (_, i) => (i % 2) * 100);
    const a = estimate(small), b = estimate(large);
    expect(a.lo).toBeLessThan(50); expect(a.hi).toBeGreaterThan(50);
    expect(b.hi - b.lo).toBeLessThan((a.hi - a.lo) / 5);
    // The percentile interval of a mean is close to ±1.96 se for n = 1000.
    expect(b.hi - b.lo).toBeGreaterThan(2 * 1.7 * b.se);
    expect(b.hi - b.lo).toBeLessThan(2 * 2.2 * b.se);
    expect(estimate(small)).toEqual(a);
    const cont = Array.from({ length: 30 }, (_, i) => Math.sin(i) * 10); // continuous, so seeds differ
    expect(estimate(cont, { seed: 1 }).lo).not.toBe(estimate(cont).lo);
  });
  it('one value has zero spread', () => {
    const e = estimate([7]);
    expect([e.std, e.se, e.lo, e.hi]).toEqual([0, 0, 7, 7]);
  });
  it('refuses empty, non-finite and bogus options with a one-line error', () => {
    expect(() => estimate([])).toThrow(/values is empty/);
    expect(() => estimate([1, NaN])).toThrow(/values\[1\] is NaN/);
    expect(() => estimate([1], { level: 1 })).toThrow(/level/);
    expect(() => estimate([1], { resamples: 1e12 })).toThrow(/resamples/);
  });
});

describe('formatting', () => {
  it('rounds for prose and names n', () => {
    expect(round(55.00000000000001)).toBe('55.0');
    expect(round(-0.04)).toBe('0.0');
    expect(round(2.345, 2)).toBe('2.35');
    const e = estimate([0.5, 0.6, 0.7]);
    expect(formatEstimate(e, { scale: 100 })).toBe(`60.0 ± ${(e.se * 100).toFixed(1)} (n = 3)`);
    expect(formatEstimate(e, { style: 'ci', digits: 2 })).toMatch(/^0\.60 \[0\.\d\d, 0\.\d\d\] \(n = 3\)$/);
  });
  it('clearlyDiffers only when the intervals are disjoint', () => {
    const lo = estimate(Array.from({ length: 200 }, (_, i) => i % 10));
    const hi = estimate(Array.from({ length: 200 }, (_, i) => 20 + (i % 10)));
    expect(clearlyDiffers(lo, hi)).toBe(true);
    expect(clearlyDiffers(lo, estimate(Array.from({ length: 200 }, (_, i) => 0.5 + (i % 10))))).toBe(false);
  });
});

describe('bootstrapInterval', () => {
  it('resamples units, not values: a statistic over whole clusters gets a wider interval than over their pooled values', () => {
    // 10 clusters of 20 equal values each: the clusters vary, the values inside one do not.
    const clusters = Array.from({ length: 10 }, (_, c) => new Array(20).fill(c));
    const pooled = clusters.flat();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const byCluster = bootstrapInterval(10, (u) => mean(Array.from(u, (i) => clusters[i]).flat()), { seed: 1 });
    const byValue = bootstrapInterval(pooled.length, (u) => mean(Array.from(u, (i) => pooled[i])), { seed: 1 });
    expect(byCluster.lo).toBeLessThan(4.5);
    expect(byCluster.hi).toBeGreaterThan(4.5);
    expect(byCluster.hi - byCluster.lo).toBeGreaterThan(2 * (byValue.hi - byValue.lo));
    expect(bootstrapInterval(10, () => 7)).toEqual({ lo: 7, hi: 7, level: 0.95 });
    expect(() => bootstrapInterval(0, () => 0)).toThrow(/at least one unit/);
  });
});
