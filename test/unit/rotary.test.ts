/**
 * Rotary variants without a transformers fixture of their own (llama3 and yarn have parity fixtures in
 * parity-transformers.test.ts): linear scaling divides every frequency by its factor; dynamic NTK is plain
 * rotary within the trained length (transformers recomputes it only beyond) and refuses longer runs.
 */
import { describe, expect, it } from 'vitest';
import { inverseFrequencies, rotaryTables } from '../../src/models/rotary';

const plain = { rotaryDims: 16, rotaryBase: 10000, maxPositions: 32 };

describe('rotary variants', () => {
  it('linear: each inverse frequency is the plain one over the factor, cos/sin unscaled', () => {
    const base = inverseFrequencies(16, 10000).invFreq;
    const linear = inverseFrequencies(16, 10000, { type: 'linear', factor: 4 });
    expect(linear.attentionFactor).toBe(1);
    base.forEach((f, j) => expect(linear.invFreq[j] * 4).toBeCloseTo(f, 12));
    expect(linear.invFreq[1]).not.toBeCloseTo(base[1], 6);
  });

  it('dynamic: the plain tables for every length up to max_position_embeddings; a one-line error beyond', () => {
    const dynamic = { ...plain, ropeScaling: { type: 'dynamic' as const, factor: 2 } };
    for (const T of [1, 9, 32]) expect(rotaryTables(dynamic, T)).toEqual(rotaryTables(plain, T));
    expect(() => rotaryTables(dynamic, 33)).toThrow(/^rope_scaling "dynamic": 33 tokens exceed max_position_embeddings \(32\); dynamic NTK rotary beyond the trained length is not supported$/);
    expect(() => rotaryTables(plain, 33)).not.toThrow();
  });
});
