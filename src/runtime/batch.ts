/**
 * Token batches: rows of token ids, right-padded to a common length, with
 * per-row lengths. Right padding keeps every real position exact for both
 * architectures (Mamba has no attention mask, so left padding would change
 * the recurrence; attention masks pad keys out).
 */
import { FactlensError } from '../errors';
export interface Batch {
  rows: number[][]; // unpadded token ids per row
  lengths: number[]; // tokens per row
  B: number;
  T: number; // padded length
  ids: Int32Array; // [B,T] right-padded with padId
  padId: number;
}

export function makeBatch(rows: number[][], vocabSize: number, padId = 0): Batch {
  if (!rows.length) throw new FactlensError('empty batch: give at least one prompt');
  rows.forEach((r, b) => {
    if (!r.length) throw new FactlensError(`row ${b} is empty: a prompt needs at least one token`);
    r.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new FactlensError(`token id ${id} at row ${b}, position ${t} is out of range: the vocabulary has ids 0..${vocabSize - 1}`);
      }
    });
  });
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(B * T).fill(padId); // [B,T]
  rows.forEach((r, b) => ids.set(r, b * T));
  return { rows: rows.map((r) => [...r]), lengths: rows.map((r) => r.length), B, T, ids, padId };
}

/** Position of each row's last real token. */
export function lastPositions(batch: Batch): number[] {
  return batch.lengths.map((n) => n - 1);
}

/**
 * A right-padded batch padded further to a multiple of `bucket` tokens. Exact: every row's real
 * tokens and its last-token logits are unchanged by padding after them. Keeps the number of
 * distinct sequence lengths (each compiled and kept by the engine) small.
 */
export function bucketed(batch: Batch, bucket: number): Batch {
  const T = Math.ceil(batch.T / bucket) * bucket;
  if (T === batch.T) return batch;
  const ids = new Int32Array(batch.B * T).fill(batch.padId); // [B,T]
  batch.rows.forEach((r, b) => ids.set(r, b * T));
  return { ...batch, T, ids };
}
