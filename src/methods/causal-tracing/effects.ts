/**
 * Indirect effect, normalised as the paper's "relative recovery":
 *
 *   IE = (p − p_corrupt) / (p_clean − p_corrupt)
 *
 * p is p(answer) with a state restored into the corrupted run, p_clean = p(answer | clean prompt)
 * ("high"), p_corrupt = p(answer | corrupted prompt) ("low"); the answer is the clean run's argmax.
 * 1 = fully restored, 0 = no effect. romba applies no guard, so a corruption that barely changes
 * p(answer) makes IE blow up (the paper's bars above 1). Here the degenerate cases are explicit:
 *
 * - 'ok':        p_clean − p_corrupt ≥ minGap: IE as above (it can still leave [0, 1]).
 * - 'small-gap': |p_clean − p_corrupt| < minGap: the corruption did not remove the fact; IE = NaN.
 * - 'inverted':  p_corrupt − p_clean ≥ minGap: the corruption made the answer more likely; IE = NaN.
 * - 'not-known': the clean top-1 is not the fact's object (when the object is given): the model does not
 *                know the fact, so restoring its answer says nothing about where the fact is; IE = NaN.
 *
 * Raw probabilities are always kept next to IE, so nothing is lost by the NaN.
 */

export type EffectStatus = 'ok' | 'small-gap' | 'inverted' | 'not-known';

/** Default minimum p_clean − p_corrupt for IE to be defined. */
export const DEFAULT_MIN_GAP = 0.01;

export function effectStatus(high: number, low: number, minGap = DEFAULT_MIN_GAP): EffectStatus {
  const gap = high - low;
  if (!Number.isFinite(gap)) return 'small-gap';
  if (gap >= minGap) return 'ok';
  return gap <= -minGap ? 'inverted' : 'small-gap';
}

/** Relative recovery of one cell; NaN unless effectStatus(high, low) is 'ok'. */
export function indirectEffect(p: number, high: number, low: number, minGap = DEFAULT_MIN_GAP): number {
  return effectStatus(high, low, minGap) === 'ok' ? (p - low) / (high - low) : NaN;
}

/** A whole [T][L] grid of restored probabilities as IE. */
export function normalizeGrid(p: ArrayLike<number>[], high: number, low: number, minGap = DEFAULT_MIN_GAP): number[][] {
  return p.map((row) => Array.from(row, (x) => indirectEffect(x, high, low, minGap)));
}

