/**
 * The finite-difference check shared by the gradient tests: an analytic directional derivative `an`
 * against a central difference `fd`, within `rel`·max(0.1, |fd|) (2e-3 relative, with an absolute
 * floor of 2e-4: tighter than the former 2e-3·max(1, |fd|) everywhere). It first asserts that the
 * derivative is large enough to test anything, 10× that tolerance, so that a zero gradient, or one
 * scaled by 0.9 or 1.1, fails.
 */
import { expect } from 'vitest';

export function expectFiniteDifference(an: number, fd: number, label: string, rel = 2e-3): void {
  const tol = rel * Math.max(0.1, Math.abs(fd));
  expect(Math.abs(fd), `${label}: |fd| = ${Math.abs(fd)} is too small to test the gradient`).toBeGreaterThan(10 * tol);
  expect(Math.abs(an - fd), `${label}: analytic ${an} vs fd ${fd}`).toBeLessThan(tol);
}
