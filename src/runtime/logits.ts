/**
 * Softmax-family helpers on logits rows: one place for the numerically stable log-sum-exp that
 * next-token probabilities, top-k tables, NLLs and KL divergences need. A row is a Float32Array of
 * V logits, or a Tensor whose last axis is the vocabulary (`rowOf` picks one row out of it).
 */
import { FactlensError } from '../errors';
import { Tensor } from './tensor';

export type LogitsRow = Float32Array | Tensor;

/** The row as a Float32Array: a Float32Array as is, a Tensor [..., V] with one row (e.g. [1,1,V]) as its data. */
export function rowOf(row: LogitsRow, what = 'logits row'): Float32Array {
  if (!(row instanceof Tensor)) return row;
  const V = row.shape[row.shape.length - 1];
  if (row.size !== V) throw new FactlensError(`${what}: expected one row of logits, got a tensor of shape [${row.shape}] (pick a row with .at(...) or logitsAt)`);
  return row.data;
}

/** Row `position` of batch row `b` of logits [B,T,V] (or [B,1,V] from `last: true`), as a view. */
export function logitsAt(logits: Tensor, b: number, position: number): Float32Array {
  const [B, T, V] = logits.shape;
  if (logits.shape.length !== 3) throw new FactlensError(`logitsAt: expected logits [B,T,V], got [${logits.shape}]`);
  if (!(b >= 0 && b < B && position >= 0 && position < T)) throw new FactlensError(`logitsAt: row ${b}, position ${position} is outside logits [${logits.shape}]`);
  return logits.data.subarray((b * T + position) * V, (b * T + position + 1) * V); // [V]
}

/** log Σ exp(x), computed from the maximum so that large logits do not overflow. */
export function logSumExp(row: LogitsRow): number {
  const x = rowOf(row);
  let max = -Infinity;
  for (let v = 0; v < x.length; v++) if (x[v] > max) max = x[v];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let v = 0; v < x.length; v++) sum += Math.exp(x[v] - max);
  return max + Math.log(sum);
}

export function logSoftmax(row: LogitsRow): Float32Array {
  const x = rowOf(row);
  const logZ = logSumExp(x);
  const out = new Float32Array(x.length); // [V]
  for (let v = 0; v < x.length; v++) out[v] = x[v] - logZ;
  return out;
}

export function softmax(row: LogitsRow): Float32Array {
  const x = rowOf(row);
  const logZ = logSumExp(x);
  const out = new Float32Array(x.length); // [V]
  for (let v = 0; v < x.length; v++) out[v] = Math.exp(x[v] - logZ);
  return out;
}

/** Index of the largest entry (the first one on ties). */
export function argmax(row: LogitsRow): number {
  const x = rowOf(row);
  if (!x.length) throw new FactlensError('argmax: the row is empty');
  let best = 0;
  for (let v = 1; v < x.length; v++) if (x[v] > x[best]) best = v;
  return best;
}

/** Indices of the k largest entries, largest first (ties keep the lower index first). */
export function topKIndices(row: LogitsRow, k: number): number[] {
  const x = rowOf(row);
  if (!Number.isInteger(k) || k < 1) throw new FactlensError(`topK: k must be a positive integer, got ${k}`);
  // A sorted list of at most k candidates: O(V·k), with no V-sized allocation (V is ~50k, k is small).
  const top: number[] = [];
  for (let v = 0; v < x.length; v++) {
    if (top.length === k && x[v] <= x[top[k - 1]]) continue;
    let i = top.length < k ? top.length : k - 1;
    while (i > 0 && x[top[i - 1]] < x[v]) i--;
    top.splice(i, 0, v);
    if (top.length > k) top.pop();
  }
  return top;
}

function checkToken(x: Float32Array, token: number, what: string): void {
  if (!Number.isInteger(token) || token < 0 || token >= x.length) throw new FactlensError(`${what}: token ${token} is outside the vocabulary 0..${x.length - 1}`);
}

/** −log p(token) under the softmax of the row. */
export function nll(row: LogitsRow, token: number): number {
  const x = rowOf(row);
  checkToken(x, token, 'nll');
  return logSumExp(x) - x[token];
}

/** p(token) under the softmax of the row. */
export function probOf(row: LogitsRow, token: number): number {
  return Math.exp(-nll(row, token));
}

/** KL(p ‖ q) = Σ p (log p − log q) for the softmaxes of two logits rows of the same vocabulary. */
export function klDivergence(p: LogitsRow, q: LogitsRow): number {
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  if (lp.length !== lq.length) throw new FactlensError(`klDivergence: rows have ${lp.length} and ${lq.length} entries`);
  let kl = 0;
  for (let v = 0; v < lp.length; v++) if (lp[v] > -Infinity) kl += Math.exp(lp[v]) * (lp[v] - lq[v]);
  return kl;
}
