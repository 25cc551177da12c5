/**
 * Streaming safetensors reader. Only the header is read at open; each tensor
 * is fetched on demand with positioned reads, because real checkpoints reach
 * 11 GB while a Node Buffer tops out at 4 GiB.
 */
import fs from 'fs';
import os from 'os';
import { CheckpointError } from './errors';
import { isFloatDtype, itemSize } from './dtypes';
import { decodeHalfInto } from './half';
import { MAX_HEADER_BYTES, TensorInfo, parseHeader } from './safetensors-header';
import { decodeUtf8, openRegularFile } from './regular-file';
import { describeNonFinite, firstNonFinite } from './finite';

export type { TensorInfo } from './safetensors-header';
export { writeSafetensors, writeShardedSafetensors } from './safetensors-write';
export type { LazyWritableTensor, WritableTensor } from './safetensors-write';

/** ORT (and a single ArrayBuffer we hand it) cannot take a tensor over 2 GiB. */
export const MAX_TENSOR_BYTES = 2 * 1024 * 1024 * 1024;

/** F16/BF16 are converted through a bounded scratch buffer of this many bytes. */
const CHUNK_BYTES = 16 * 1024 * 1024;

/** readSync takes at most 2^31-1 bytes per call. */
const MAX_READ_BYTES = 1024 * 1024 * 1024;

if (os.endianness() !== 'LE') throw new Error('src/io/safetensors: typed-array views assume a little-endian host');

export class SafetensorsFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    private readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
    /** inode, size and mtime at open (see checkUnchanged). */
    private readonly identity: string,
  ) {
    this.fd = fd;
  }

  static open(path: string): SafetensorsFile {
    const fd = openRegularFile(path, 'safetensors');
    try {
      const header = readHeader(path, fd);
      return new SafetensorsFile(path, fd, header.tensors, header.metadata, identityOf(fs.fstatSync(fd, { bigint: true })));
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /**
   * Throws unless the file at `path` is still the one opened (same inode, size and mtime): a reader
   * that opens the path again (onnxruntime's external data, in packed mode) would otherwise read
   * whatever replaced or overwrote it since.
   */
  checkUnchanged(): void {
    let now: string;
    try {
      now = identityOf(fs.statSync(this.path, { bigint: true }));
    } catch (e) {
      throw new CheckpointError(`${this.path}: checkpoint file is gone since it was opened (${(e as NodeJS.ErrnoException).code}); load the model again`);
    }
    if (now !== this.identity) {
      throw new CheckpointError(`${this.path}: checkpoint file changed since it was opened (was ${this.identity}, now ${now}); load the model again`);
    }
  }
  /** Tensor names in header order. */
  get names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw new CheckpointError(`${this.path}: no tensor named "${name}" (the file has ${this.tensors.size})`);
    return { dtype: t.dtype, shape: t.shape.slice(), byteOffset: t.byteOffset, byteLength: t.byteLength };
  }

  /** One tensor widened to float32: one output allocation plus a bounded scratch buffer. */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    if (!isFloatDtype(t.dtype)) {
      throw new CheckpointError(`${this.path}: tensor "${name}" has dtype ${t.dtype}; only F32, F16 and BF16 can be read as float32`);
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n * 4 > MAX_TENSOR_BYTES) {
      throw new CheckpointError(
        `${this.path}: tensor "${name}" [${t.shape.join(', ')}] is ${n * 4} bytes as float32, over the 2 GiB limit of one ONNX Runtime tensor`,
      );
    }
    const out = new Float32Array(n);
    if (t.dtype === 'F32') {
      this.readInto(name, new Uint8Array(out.buffer), t.byteOffset);
      return out;
    }
    const outBits = new Uint32Array(out.buffer);
    const scratch = new Uint8Array(Math.min(CHUNK_BYTES, t.byteLength)); // even length: both are multiples of 2
    const halves = new Uint16Array(scratch.buffer);
    for (let done = 0; done < t.byteLength; done += scratch.length) {
      const len = Math.min(scratch.length, t.byteLength - done);
      this.readInto(name, scratch.subarray(0, len), t.byteOffset + done);
      const src = halves.subarray(0, len / 2); // [len/2] 16-bit patterns
      decodeHalfInto(t.dtype, src, outBits, done / 2);
    }
    return out;
  }

  /**
   * Rows of a 2-D float tensor widened to float32, [rows.length, C]: an embedding
   * lookup without reading the whole matrix (one positioned read per distinct row).
   */
  readRowsFloat32(name: string, rows: ArrayLike<number>): Float32Array {
    const t = this.info(name);
    if (!isFloatDtype(t.dtype) || t.shape.length !== 2) {
      throw new CheckpointError(`${this.path}: tensor "${name}" (${t.dtype} [${t.shape}]) is not a 2-D float tensor to read rows of`);
    }
    const [R, C] = t.shape;
    const rowBytes = C * itemSize(t.dtype);
    const out = new Float32Array(rows.length * C); // [rows,C]
    const outBits = new Uint32Array(out.buffer);
    const raw = new Uint8Array(rowBytes); // one stored row
    const halves = new Uint16Array(raw.buffer, 0, t.dtype === 'F32' ? 0 : C);
    const first = new Map<number, number>(); // row -> the output index that already holds it
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (!Number.isInteger(r) || r < 0 || r >= R) throw new CheckpointError(`${this.path}: row ${r} of tensor "${name}" is out of range 0..${R - 1}`);
      const seen = first.get(r);
      if (seen !== undefined) {
        out.copyWithin(i * C, seen * C, (seen + 1) * C);
        continue;
      }
      first.set(r, i);
      if (t.dtype === 'F32') {
        this.readInto(name, new Uint8Array(out.buffer, i * C * 4, rowBytes), t.byteOffset + r * rowBytes);
        continue;
      }
      this.readInto(name, raw, t.byteOffset + r * rowBytes);
      decodeHalfInto(t.dtype, halves, outBits, i * C);
    }
    return out;
  }

  /** The first NaN/±Inf of a float tensor, found in bounded chunks of its stored bytes; null when every element is finite. */
  findNonFinite(name: string): { index: number; value: string } | null {
    const t = this.info(name);
    if (!isFloatDtype(t.dtype) || t.byteLength === 0) return null;
    const scratch = new Uint8Array(Math.min(CHUNK_BYTES, t.byteLength)); // a multiple of the item size: both are
    for (let done = 0; done < t.byteLength; done += scratch.length) {
      const chunk = scratch.subarray(0, Math.min(scratch.length, t.byteLength - done));
      this.readInto(name, chunk, t.byteOffset + done);
      const i = firstNonFinite(t.dtype, chunk);
      if (i >= 0) return { index: done / itemSize(t.dtype) + i, value: describeNonFinite(t.dtype, chunk, i) };
    }
    return null;
  }

  /** Integer tensors (token ids, masks) as int32; I64 values must fit. */
  readInt32(name: string): Int32Array {
    const t = this.info(name);
    if (t.dtype !== 'I32' && t.dtype !== 'I64') {
      throw new CheckpointError(`${this.path}: tensor "${name}" has dtype ${t.dtype}; readInt32 takes I32 or I64`);
    }
    if (t.byteLength > MAX_TENSOR_BYTES) {
      throw new CheckpointError(`${this.path}: tensor "${name}" is ${t.byteLength} bytes, over the 2 GiB limit`);
    }
    const raw = new Uint8Array(t.byteLength);
    this.readInto(name, raw, t.byteOffset);
    if (t.dtype === 'I32') return new Int32Array(raw.buffer);
    const wide = new BigInt64Array(raw.buffer);
    const out = new Int32Array(wide.length);
    for (let i = 0; i < wide.length; i++) {
      const v = wide[i];
      if (v > 2147483647n || v < -2147483648n) {
        throw new CheckpointError(`${this.path}: tensor "${name}" element ${i} = ${v} does not fit in int32`);
      }
      out[i] = Number(v);
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  /** Fill dst from absolute file position pos; readSync may return short counts. */
  private readInto(name: string, dst: Uint8Array, pos: number): void {
    if (this.fd === null) throw new CheckpointError(`${this.path}: read of tensor "${name}" after close()`);
    const got = readFully(this.fd, dst, pos);
    if (got < dst.length) {
      throw new CheckpointError(`${this.path}: tensor "${name}" ends early at byte ${pos + got} (file changed or truncated since open?)`);
    }
  }
}

function readHeader(path: string, fd: number): ReturnType<typeof parseHeader> {
  const stat = fs.fstatSync(fd);
  const size = stat.size;
  if (size < 8) throw new CheckpointError(`${path}: only ${size} bytes; a safetensors file starts with an 8-byte header length`);
  const lenBytes = Buffer.alloc(8);
  readFully(fd, lenBytes, 0);
  const headerLength = lenBytes.readBigUInt64LE(0);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(`${path}: header length ${headerLength} bytes is absurd (limit ${MAX_HEADER_BYTES}); not a safetensors file?`);
  }
  const n = Number(headerLength);
  if (8 + n > size) {
    throw new CheckpointError(`${path}: header length ${n} bytes runs past the end of the ${size}-byte file (truncated or not safetensors)`);
  }
  const headerBytes = Buffer.alloc(n);
  if (readFully(fd, headerBytes, 8) !== n) throw new CheckpointError(`${path}: file shrank while reading its header`);
  return parseHeader(path, decodeUtf8(headerBytes, `${path}: safetensors header`), n, size);
}

/** Nanosecond mtime: a rewrite within the same millisecond still shows. */
function identityOf(s: fs.BigIntStats): string {
  return `inode ${s.ino}, ${s.size} bytes, mtime ${s.mtimeNs} ns`;
}

/** Read up to dst.length bytes at pos; returns the count (short only at end of file). */
function readFully(fd: number, dst: Uint8Array, pos: number): number {
  let got = 0;
  while (got < dst.length) {
    const n = fs.readSync(fd, dst, got, Math.min(dst.length - got, MAX_READ_BYTES), pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
