/**
 * A dense row-major tensor on a typed array: the currency between the
 * library, ONNX sessions and user code. Views share memory with their source.
 */
import { inspect } from 'util';
import { FactlensError } from '../errors';
import { summarizeTensor } from './tensor-summary';
export type TensorData = Float32Array | BigInt64Array | Uint8Array;

export class Tensor<D extends TensorData = Float32Array> {
  constructor(
    readonly data: D,
    readonly shape: number[],
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new FactlensError(`Tensor: shape [${shape}] needs ${n} elements, got ${data.length}`);
  }

  static zeros(shape: number[]): Tensor {
    return new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  }

  static from(values: ArrayLike<number>, shape: number[]): Tensor {
    return new Tensor(Float32Array.from(values), shape);
  }

  get size(): number {
    return this.data.length;
  }

  /** Elements per index of axis `axis` (the stride of that axis). */
  stride(axis: number): number {
    let s = 1;
    for (let i = axis + 1; i < this.shape.length; i++) s *= this.shape[i];
    return s;
  }

  /** A view of the sub-tensor at index i of the first axis. */
  at(i: number): Tensor<D> {
    const s = this.stride(0);
    if (i < 0 || i >= this.shape[0]) throw new FactlensError(`Tensor.at: index ${i} out of range for shape [${this.shape}]`);
    return new Tensor(this.data.subarray(i * s, (i + 1) * s) as D, this.shape.slice(1));
  }

  reshape(shape: number[]): Tensor<D> {
    return new Tensor(this.data, shape);
  }

  clone(): Tensor<D> {
    return new Tensor(this.data.slice() as D, [...this.shape]);
  }

  /** Nested JS arrays (for JSON output and tests). */
  toNested(): unknown {
    const rec = (off: number, dim: number): unknown => {
      if (dim === this.shape.length) return Number(this.data[off]);
      const s = this.stride(dim);
      const out: unknown[] = [];
      for (let i = 0; i < this.shape[dim]; i++) out.push(rec(off + i * s, dim + 1));
      return out;
    };
    return this.shape.length === 0 ? Number(this.data[0]) : rec(0, 0);
  }

  /** One line: shape, dtype, min/mean/max (a notebook cell's last expression, console.log). */
  toString(): string {
    return summarizeTensor(this);
  }

  [inspect.custom](): string {
    return summarizeTensor(this);
  }
}

/** Positions [from,to) of a [B,T,...] tensor along axis 1. */
export function sliceTime(t: Tensor, from: number, to: number): Tensor {
  const [B, T] = t.shape;
  const w = t.stride(1);
  const out = new Float32Array(B * (to - from) * w); // [B,to-from,...]
  for (let b = 0; b < B; b++) out.set(t.data.subarray((b * T + from) * w, (b * T + to) * w), b * (to - from) * w);
  return new Tensor(out, [B, to - from, ...t.shape.slice(2)]);
}

/** Concatenate [B,T_i,...] tensors along axis 1. */
export function concatTime(parts: Tensor[]): Tensor {
  const B = parts[0].shape[0];
  const w = parts[0].stride(1);
  const T = parts.reduce((s, p) => s + p.shape[1], 0);
  const out = new Float32Array(B * T * w); // [B,T,...]
  let off = 0;
  for (const p of parts) {
    const Tp = p.shape[1];
    for (let b = 0; b < B; b++) out.set(p.data.subarray(b * Tp * w, (b + 1) * Tp * w), (b * T + off) * w);
    off += Tp;
  }
  return new Tensor(out, [B, T, ...parts[0].shape.slice(2)]);
}
