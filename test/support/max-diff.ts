/** Largest absolute elementwise difference of two equal-length arrays (the lengths are asserted). */
import { expect } from 'vitest';

export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
