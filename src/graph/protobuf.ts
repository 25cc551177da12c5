/**
 * A minimal protobuf encoder, just enough to write ONNX ModelProto messages.
 * Messages are built as lists of byte chunks and concatenated once, so large
 * tensors (raw weight bytes) are never copied more than one time.
 */

export type Chunk = Uint8Array;

/** One encoded message: a list of chunks plus its total byte length. */
export class Msg {
  chunks: Chunk[] = [];
  length = 0;

  private push(c: Chunk): void {
    this.chunks.push(c);
    this.length += c.length;
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  private varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    while (n >= 0x80n) {
      out.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(Number(n));
    this.push(Uint8Array.from(out));
  }

  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.length);
    this.push(data);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Msg): this {
    this.key(field, 2);
    this.varint(m.length);
    for (const c of m.chunks) this.push(c);
    return this;
  }

  /** Packed repeated int64 (varints). */
  packedInts(field: number, values: ArrayLike<number | bigint>): this {
    const inner = new Msg();
    for (let i = 0; i < values.length; i++) inner.varint(values[i]);
    this.key(field, 2);
    this.varint(inner.length);
    for (const c of inner.chunks) this.push(c);
    return this;
  }

  /** Packed repeated float32. */
  packedFloats(field: number, values: ArrayLike<number>): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i], true);
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}
