/**
 * A model's float32 weights by canonical name. By default every weight is
 * read at load and stays resident (one copy). A packed model (see
 * packed-weights.ts) reads none at load: its plain forwards need only
 * embedding rows (read from the file per batch), and each weight is read from
 * the checkpoint the first time a hook, gradient or edit asks for it, and kept
 * from then on (the checkpoint stays open and must not change meanwhile).
 */
import { FactlensError } from '../errors';
import type { Checkpoint } from '../io/checkpoint';
import { Tensor } from './tensor';

export class WeightStore {
  private constructor(
    private readonly shapes: Map<string, number[]>,
    private readonly resident: Map<string, Tensor>,
    /** Open checkpoint for weights not yet resident (null: all are resident). */
    private readonly source: Checkpoint | null,
  ) {}

  /** Every weight read now. */
  static resident(weights: Map<string, Tensor>): WeightStore {
    return new WeightStore(new Map([...weights].map(([n, t]) => [n, t.shape])), weights, null);
  }

  /** Nothing read now: each weight on first use, from the open checkpoint. */
  static lazy(shapes: Map<string, number[]>, source: Checkpoint): WeightStore {
    return new WeightStore(shapes, new Map(), source);
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }

  names(): string[] {
    return [...this.shapes.keys()];
  }

  /** Whether the weight is held in JavaScript now. */
  isResident(name: string): boolean {
    return this.resident.has(name);
  }

  /** The weight, read from the checkpoint and kept if it is not resident yet; undefined for an unknown name. */
  get(name: string): Tensor | undefined {
    let t = this.resident.get(name);
    if (!t && this.shapes.has(name)) {
      t = this.read(name);
      this.resident.set(name, t);
    }
    return t;
  }

  /** Rows of a 2-D weight [rows.length, C]: copied when it is resident, else read from the checkpoint (and not kept). */
  rows(name: string, rows: ArrayLike<number>): Float32Array {
    const t = this.resident.get(name);
    if (!t && this.source && this.shapes.has(name)) return this.source.readRowsFloat32(name, rows);
    if (!t) throw new FactlensError(`no weight "${name}"`);
    return gatherRows(t, rows);
  }

  /** Float32 bytes of the weights whose names match (all by default), resident or not. */
  bytes(match: (name: string) => boolean = () => true): number {
    let n = 0;
    for (const [name, s] of this.shapes) if (match(name)) n += 4 * s.reduce((a, b) => a * b, 1);
    return n;
  }

  /** Float32 bytes held in JavaScript now. */
  get residentBytes(): number {
    let n = 0;
    for (const t of this.resident.values()) n += t.data.byteLength;
    return n;
  }

  private read(name: string): Tensor {
    const shape = this.shapes.get(name);
    if (!shape || !this.source) throw new FactlensError(`no weight "${name}"`);
    return new Tensor(this.source.readFloat32(name), shape);
  }
}

/** Rows of a resident 2-D tensor W [R,C] as [rows.length, C]. */
export function gatherRows(W: Tensor, rows: ArrayLike<number>): Float32Array {
  const C = W.shape[1];
  const out = new Float32Array(rows.length * C); // [rows,C]
  for (let i = 0; i < rows.length; i++) out.set(W.data.subarray(rows[i] * C, (rows[i] + 1) * C), i * C);
  return out;
}
