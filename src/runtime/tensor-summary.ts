/**
 * One-line summaries for notebooks: a Tensor as a cell's last expression shows its shape, dtype and
 * min/mean/max instead of a dump of its elements (tslab prints values with util.inspect).
 */
import type { Tensor, TensorData } from './tensor';

const DTYPES: Array<[Function, string]> = [[Float32Array, 'float32'], [BigInt64Array, 'int64'], [Uint8Array, 'uint8']];

export function dtypeOf(data: TensorData): string {
  return DTYPES.find(([ctor]) => data instanceof ctor)?.[1] ?? data.constructor.name;
}

/** "Tensor [1,8,256] float32 min -2.13 mean 0.0012 max 3.5" (NaNs counted apart). */
export function summarizeTensor(t: Tensor<TensorData>): string {
  const head = `Tensor [${t.shape.join(',')}] ${dtypeOf(t.data)}`;
  if (!t.size) return `${head} (empty)`;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let nan = 0;
  for (let i = 0; i < t.size; i++) {
    const x = Number(t.data[i]);
    if (Number.isNaN(x)) {
      nan++;
      continue;
    }
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  const stats = nan === t.size ? 'all NaN' : `min ${fmt(min)} mean ${fmt(sum / (t.size - nan))} max ${fmt(max)}${nan ? ` (${nan} NaN)` : ''}`;
  return `${head} ${stats}`;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let u = -1;
  do {
    n /= 1024;
    u++;
  } while (n >= 1024 && u < units.length - 1);
  return `${n.toFixed(1)} ${units[u]}`;
}
