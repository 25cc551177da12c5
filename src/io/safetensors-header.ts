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

/**
 * Headers of real checkpoints are tens to hundreds of KB (a few hundred to a few thousand entries of
 * ~150 bytes; a Mamba or Pythia 2.8b file: ~80 KB); 2 MiB holds ~14,000 entries. The bound keeps a
 * corrupt or hostile header under a second of parsing on a busy 2-core machine (a 71 MB header of
 * empty tensors took 17-37 s and 1.4 GB before it; 8 MB still took 1.7-3.1 s).
 */
export const MAX_HEADER_BYTES = 2 * 1024 * 1024;

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
  checkTiling(file, spans, dataBytes);
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

/**
 * The format's promise: the data block is exactly the tensors' bytes, without overlaps (two
 * tensors would alias), gaps or trailing bytes (a span that does not match what was written, e.g. a
 * tensor re-declared as F16 over F32 data, leaves bytes no tensor covers). Empty tensors take no bytes.
 */
function checkTiling(file: string, spans: { name: string; begin: number; end: number }[], dataBytes: number): void {
  const sorted = spans.filter((s) => s.end > s.begin).sort((a, b) => a.begin - b.begin);
  let covered = 0; // bytes of the data block accounted for so far
  let prev = '';
  let prevBegin = 0;
  for (const cur of sorted) {
    if (cur.begin < covered) {
      throw new CheckpointError(`${file}: tensors "${prev}" [${prevBegin}, ${covered}] and "${cur.name}" [${cur.begin}, ${cur.end}] overlap`);
    }
    if (cur.begin > covered) {
      const after = prev ? `after tensor "${prev}"` : 'at the start of the data block';
      throw new CheckpointError(`${file}: ${cur.begin - covered} bytes [${covered}, ${cur.begin}) ${after} belong to no tensor (before "${cur.name}"); the format allows no gaps`);
    }
    covered = cur.end;
    prev = cur.name;
    prevBegin = cur.begin;
  }
  if (covered < dataBytes) {
    const after = prev ? `after the last tensor "${prev}"` : 'in a file whose tensors are all empty';
    throw new CheckpointError(`${file}: ${dataBytes - covered} trailing bytes ${after} belong to no tensor (wrong data_offsets, or data appended to the file)`);
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
