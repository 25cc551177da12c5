/**
 * The logits toolkit (src/runtime/logits.ts) against direct float64 formulas on random rows, with
 * large offsets that overflow a naive exp; grad.ts's softmaxRow (the losses' entry point) goes through it.
 */
import { describe, expect, it } from 'vitest';
import { argmax, klDivergence, logitsAt, logSoftmax, logSumExp, nll, probOf, rowOf, softmax, topKIndices } from '../../src/runtime/logits';
import { softmaxRow } from '../../src/runtime/grad';
import { rng } from '../../src/runtime/generate';
import { Tensor } from '../../src/runtime/tensor';

function randomRow(n: number, seed: number, offset = 0): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => offset + 8 * (r() - 0.5));
}

describe('logits toolkit', () => {
  const row = randomRow(1000, 1);

  it('logSumExp and softmax equal the float64 formula and softmaxRow', () => {
    let z = 0;
    for (const x of row) z += Math.exp(x);
    expect(Math.abs(logSumExp(row) - Math.log(z))).toBeLessThan(1e-9);
    const p = softmax(row);
    const ref = softmaxRow(row, 0, row.length).probs;
    for (let v = 0; v < row.length; v++) expect(Math.abs(p[v] - Math.exp(row[v]) / z)).toBeLessThan(1e-7);
    expect(Math.max(...p.map((x, v) => Math.abs(x - ref[v])))).toBeLessThan(1e-9);
    expect(p.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
  });

  it('is stable for logits far from zero (a naive exp overflows)', () => {
    const big = randomRow(100, 2, 1000);
    const shifted = big.map((x) => x - 1000);
    expect(Math.abs(logSumExp(big) - 1000 - logSumExp(shifted))).toBeLessThan(1e-3);
    const ls = logSoftmax(big);
    expect(ls.every(Number.isFinite)).toBe(true);
    expect(Math.max(...ls.map((x, v) => Math.abs(x - logSoftmax(shifted)[v])))).toBeLessThan(1e-4);
  });

  it('argmax and topKIndices agree with a full sort (ties: lower index first)', () => {
    const sorted = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b);
    expect(argmax(row)).toBe(sorted[0]);
    expect(topKIndices(row, 7)).toEqual(sorted.slice(0, 7));
    expect(topKIndices(row, 1)).toEqual([sorted[0]]);
    expect(topKIndices(Float32Array.from([1, 3, 3, 0, 3]), 2)).toEqual([1, 2]);
    expect(topKIndices(Float32Array.from([2, 1]), 5)).toEqual([0, 1]);
    expect(() => topKIndices(row, 0)).toThrow(/k must be a positive integer/);
  });

  it('nll, probOf and KL', () => {
    const t = 17;
    expect(Math.abs(nll(row, t) - (logSumExp(row) - row[t]))).toBeLessThan(1e-9);
    expect(Math.abs(probOf(row, t) - softmax(row)[t])).toBeLessThan(1e-7);
    expect(() => nll(row, 1000)).toThrow(/token 1000 is outside the vocabulary 0..999/);
    const other = randomRow(1000, 3);
    const p = softmax(row);
    const lp = logSoftmax(row);
    const lq = logSoftmax(other);
    let ref = 0;
    for (let v = 0; v < p.length; v++) ref += p[v] * (lp[v] - lq[v]);
    expect(Math.abs(klDivergence(row, other) - ref)).toBeLessThan(1e-6);
    expect(klDivergence(row, other)).toBeGreaterThan(0);
    expect(Math.abs(klDivergence(row, row))).toBeLessThan(1e-9);
  });

  it('takes Tensor rows and picks rows of [B,T,V] logits', () => {
    const logits = new Tensor(Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i % 5), [2, 3, 4]); // [B,T,V]
    expect(Array.from(logitsAt(logits, 1, 2))).toEqual([(20 % 5), 21 % 5, 22 % 5, 23 % 5]);
    expect(argmax(new Tensor(logitsAt(logits, 1, 2), [1, 1, 4]))).toBe(argmax(logitsAt(logits, 1, 2)));
    expect(() => rowOf(logits)).toThrow(/one row of logits, got a tensor of shape \[2,3,4\]/);
    expect(() => logitsAt(logits, 2, 0)).toThrow(/row 2, position 0 is outside logits \[2,3,4\]/);
  });
});
