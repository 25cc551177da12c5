/**
 * Validation of a safetensors JSON header. Format: u64 little-endian N, then N
 * bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?},
 * then the data block; offsets are relative to the data block (byte 8 + N).
 */
import { CheckpointError } from './errors';
import { Dtype, KNOWN_DTYPES, isDtype, itemSize } from './dtypes';

export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Absolute position of the first byte in the file. */
  byteOffset: number;
  byteLength: number;
}

export interface ParsedHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** Headers of real checkpoints are tens of KB; anything this big is corruption. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function parseHeader(file: string, headerText: string, headerLength: number, fileSize: number): ParsedHeader {
  let json: unknown;
  try {
    json = JSON.parse(headerText);
  } catch (e) {
    throw new CheckpointError(`${file}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) throw new CheckpointError(`${file}: safetensors header must be a JSON object, got ${describe(json)}`);

  const dataStart = 8 + headerLength;
  const dataBytes = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];

  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, entry);
      continue;
    }
    const where = `${file}: tensor "${name}"`;
    if (!isPlainObject(entry)) throw new CheckpointError(`${where}: entry must be an object, got ${describe(entry)}`);
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!(key in entry)) throw new CheckpointError(`${where}: missing "${key}"`);
    }
    const dtype = entry.dtype;
    if (!isDtype(dtype)) {
      throw new CheckpointError(`${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${KNOWN_DTYPES.join(', ')})`);
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
      throw new CheckpointError(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
      throw new CheckpointError(`${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as number[];
    if (end < begin) throw new CheckpointError(`${where}: data_offsets end ${end} is before begin ${begin}`);
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * itemSize(dtype);
    if (end - begin !== expected) {
      throw new CheckpointError(
        `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} shape [${shape.join(', ')}] needs ${expected}`,
      );
    }
    if (end > dataBytes) {
      throw new CheckpointError(
        `${where}: data ends at byte ${dataStart + end} but the file has only ${fileSize} bytes (truncated download?)`,
      );
    }
    tensors.set(name, { dtype, shape: (shape as number[]).slice(), byteOffset: dataStart + begin, byteLength: end - begin });
    spans.push({ name, begin, end });
  }
  checkNoOverlap(file, spans);
  return { tensors, metadata };
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (!isPlainObject(entry)) throw new CheckpointError(`${file}: "__metadata__" must be an object of strings, got ${describe(entry)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw new CheckpointError(`${file}: "__metadata__.${k}" must be a string, got ${describe(v)}`);
    out[k] = v;
  }
  return out;
}

/** Two tensors sharing bytes would silently alias; the format forbids it. Empty tensors take no bytes. */
function checkNoOverlap(file: string, spans: { name: string; begin: number; end: number }[]): void {
  const sorted = spans.filter((s) => s.end > s.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.begin < prev.end) {
      throw new CheckpointError(
        `${file}: tensors "${prev.name}" [${prev.begin}, ${prev.end}] and "${cur.name}" [${cur.begin}, ${cur.end}] overlap`,
      );
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}
