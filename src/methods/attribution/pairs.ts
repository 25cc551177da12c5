/**
 * Prompt pairs and directions. Denoising (as causal tracing restores): the base run is the
 * corrupted prompt and the source the clean one, estimate (a_clean − a_corrupt)·∂m/∂a on the
 * corrupted run. Noising: base clean, source corrupted, (a_corrupt − a_clean)·∂m/∂a on the clean run.
 */
import { FactlensError } from '../../errors';

export interface PromptPair {
  clean: number[];
  corrupt: number[];
}

export type Direction = 'denoising' | 'noising';

export function checkPairs(pairs: PromptPair[]): void {
  if (!pairs.length) throw new FactlensError('attribution: give at least one prompt pair');
  pairs.forEach((p, i) => {
    if (!Array.isArray(p.clean) || !Array.isArray(p.corrupt)) throw new FactlensError(`attribution: pair ${i} needs clean and corrupt token id arrays`);
    if (p.clean.length !== p.corrupt.length) {
      throw new FactlensError(`attribution: pair ${i} has ${p.clean.length} clean and ${p.corrupt.length} corrupted tokens (prompts of a pair must have equal token length)`);
    }
  });
}

/** Rows of the run the gradient is taken on (base) and of the run patched in (source). */
export function runRows(pairs: PromptPair[], direction: Direction): { base: number[][]; source: number[][] } {
  if (direction !== 'denoising' && direction !== 'noising') throw new FactlensError(`attribution: direction must be "denoising" or "noising", got "${direction}"`);
  const clean = pairs.map((p) => p.clean);
  const corrupt = pairs.map((p) => p.corrupt);
  return direction === 'denoising' ? { base: corrupt, source: clean } : { base: clean, source: corrupt };
}

/** Pairs in batches of `size`: the batch, each row's pair index and the rows of both runs. */
export function* pairBatches(pairs: PromptPair[], size: number, direction: Direction): Generator<{ chunk: PromptPair[]; p0: number; pairOf: number[]; rows: { base: number[][]; source: number[][] } }> {
  if (!(Number.isInteger(size) && size >= 1)) throw new FactlensError(`attribution: batch size must be a positive integer, got ${size}`);
  for (let p0 = 0; p0 < pairs.length; p0 += size) {
    const chunk = pairs.slice(p0, p0 + size);
    yield { chunk, p0, pairOf: chunk.map((_, i) => p0 + i), rows: runRows(chunk, direction) };
  }
}
