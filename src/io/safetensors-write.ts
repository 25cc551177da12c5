/**
 * safetensors writer for float tensors (tests, benchmarks, converted
 * checkpoints). Writes in bounded chunks: fs.writeFileSync refuses > 2 GiB.
 */
import fs from 'fs';
import nodePath from 'path';
import { CheckpointError } from './errors';
import { FloatDtype } from './dtypes';
import { encodeBf16, encodeF16 } from './half';

export interface WritableTensor {
  dtype: FloatDtype;
  shape: number[];
  /** Row-major values; narrowed to dtype with round-to-nearest-even. */
  data: Float32Array;
}

/** A tensor whose values are made when it is written: a file of many large tensors holds one at a time. */
export interface LazyWritableTensor {
  dtype: FloatDtype;
  shape: number[];
  make: () => Float32Array;
}

type AnyTensor = WritableTensor | LazyWritableTensor;
const valuesOf = (t: AnyTensor) => ('make' in t ? t.make() : t.data);

/** Elements converted per write (16 MiB of float32 input). */
const CHUNK_ELEMENTS = 4 * 1024 * 1024;

export function writeSafetensors(path: string, tensors: Record<string, AnyTensor>, metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new CheckpointError(`${path}: metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    checkTensor(path, name, t);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F32' ? 4 : 2);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // Pad with spaces so the data block starts 8-byte aligned (the format allows trailing whitespace).
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));

  const fd = fs.openSync(path, 'w');
  try {
    writeAll(fd, len);
    writeAll(fd, headerBytes);
    for (const [name, t] of Object.entries(tensors)) {
      const data = valuesOf(t);
      checkLength(path, name, t.shape, data.length);
      writeTensor(fd, t.dtype, data);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A sharded checkpoint as save_pretrained writes it: model-0000i-of-0000n.safetensors
 * files (one per entry of `shards`) and model.safetensors.index.json mapping each
 * tensor to its file. Returns the shard file names.
 */
export function writeShardedSafetensors(dir: string, shards: Record<string, AnyTensor>[], metadata?: Record<string, string>): string[] {
  const n = String(shards.length).padStart(5, '0');
  const files = shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((tensors, i) => {
    writeSafetensors(nodePath.join(dir, files[i]), tensors, metadata);
    for (const name of Object.keys(tensors)) weightMap[name] = files[i];
  });
  fs.writeFileSync(nodePath.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 1));
  return files;
}

function checkTensor(path: string, name: string, t: AnyTensor): void {
  const where = `${path}: tensor "${name}"`;
  if (name === '' || name === '__metadata__') throw new CheckpointError(`${where}: reserved or empty name`);
  if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
    throw new CheckpointError(`${where}: can only write F32, F16 or BF16, got ${JSON.stringify(t.dtype)}`);
  }
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new CheckpointError(`${where}: shape [${t.shape.join(', ')}] must be non-negative integers`);
  }
  if ('data' in t) checkLength(path, name, t.shape, t.data.length);
}

function checkLength(path: string, name: string, shape: number[], length: number): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== length) throw new CheckpointError(`${path}: tensor "${name}": shape [${shape.join(', ')}] needs ${n} values, data has ${length}`);
}

function writeTensor(fd: number, dtype: FloatDtype, data: Float32Array): void {
  if (dtype === 'F32') {
    for (let i = 0; i < data.length; i += CHUNK_ELEMENTS) {
      const part = data.subarray(i, Math.min(i + CHUNK_ELEMENTS, data.length));
      writeAll(fd, new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    }
    return;
  }
  const scratch = new Uint16Array(Math.min(CHUNK_ELEMENTS, data.length));
  for (let i = 0; i < data.length; i += scratch.length) {
    const part = data.subarray(i, Math.min(i + scratch.length, data.length));
    const out = scratch.subarray(0, part.length);
    if (dtype === 'F16') encodeF16(part, out);
    else encodeBf16(part, out);
    writeAll(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}
