/**
 * Saving an edited model as a Hugging Face checkpoint directory that transformers loads unchanged:
 * every file of the source directory is copied (config.json, tokenizer files, generation config, the
 * shard index, the safetensors files), then each edited tensor's bytes are overwritten in place in
 * its copied safetensors file, in the tensor's own dtype (F16/BF16 rounded to nearest even). Headers,
 * tensor names, order, metadata and every tensor not edited stay byte-identical to the source.
 * Weight files in other formats (.bin, .pt, …) are not copied: they would hold the unedited weights.
 */
import fs from 'fs';
import path from 'path';
import { openCheckpoint } from './checkpoint';
import { CheckpointError } from './errors';
import { decodeHalfInto, encodeBf16, encodeF16 } from './half';
import type { ModelConfig } from './config-types';

/** Weight formats that a rewritten safetensors checkpoint must not carry along stale. */
const OTHER_WEIGHT_FORMATS = /\.(bin|pt|pth|ckpt|h5|msgpack|onnx|gguf)$/i;

const sources = new WeakMap<ModelConfig, string>();

/** Record the checkpoint directory a model (and every edited view of it, which shares its config) came from. */
export function rememberSource(config: ModelConfig, dir: string): void {
  sources.set(config, path.resolve(dir));
}

export function sourceOf(config: ModelConfig): string | undefined {
  return sources.get(config);
}

export interface SaveReport {
  dir: string;
  source: string;
  /** Edited tensors as stored: canonical name, name in the file, file, dtype. */
  edited: Array<{ name: string; storedName: string; file: string; dtype: string }>;
  /** Files copied from the source (names). */
  copied: string[];
  /** Entries of the source directory not copied (subdirectories, other weight formats). */
  skipped: string[];
}

interface PlannedEdit {
  name: string;
  storedName: string;
  file: string;
  dtype: 'F32' | 'F16' | 'BF16';
  byteOffset: number;
  bytes: Uint8Array;
}

/** The bytes of float32 values in a stored dtype. */
function encode(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  if (dtype === 'F16') encodeF16(values, out);
  else encodeBf16(values, out);
  return new Uint8Array(out.buffer);
}

/** Check every edit against the source checkpoint and encode it, before anything is written. */
function planEdits(source: string, edited: Map<string, Float32Array>): PlannedEdit[] {
  const ckpt = openCheckpoint(source);
  try {
    return [...edited].map(([name, values]): PlannedEdit => {
      if (!ckpt.has(name)) throw new CheckpointError(`save: edited weight "${name}" is not stored in ${source} (a tied or derived weight cannot be saved)`);
      const info = ckpt.info(name);
      if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') throw new CheckpointError(`save: "${info.storedName}" in ${info.file} has dtype ${info.dtype}; only float weights can be rewritten`);
      const numel = info.shape.reduce((a, b) => a * b, 1);
      if (values.length !== numel) throw new CheckpointError(`save: edited weight "${name}" has ${values.length} values, "${info.storedName}" [${info.shape}] needs ${numel}`);
      const bytes = encode(values, info.dtype);
      if (bytes.byteLength !== info.byteLength) throw new CheckpointError(`save: "${info.storedName}" spans ${info.byteLength} bytes, its encoding ${bytes.byteLength}`);
      return { name, storedName: info.storedName, file: path.basename(info.file), dtype: info.dtype, byteOffset: info.byteOffset, bytes };
    });
  } finally {
    ckpt.close();
  }
}

/** Write `source` with the edited tensors (canonical name → float32 values) replaced into `out`. */
export function saveCheckpoint(source: string, out: string, edited: Map<string, Float32Array>): SaveReport {
  const src = path.resolve(source);
  const dst = path.resolve(out);
  if (src === dst) throw new CheckpointError(`save: ${out} is the source checkpoint itself; save to another directory`);
  if (fs.existsSync(dst) && !fs.statSync(dst).isDirectory()) throw new CheckpointError(`save: ${out} exists and is not a directory`);
  const plan = planEdits(src, edited);
  fs.mkdirSync(dst, { recursive: true });
  const copied: string[] = [];
  const skipped: string[] = [];
  for (const name of fs.readdirSync(src).sort()) {
    const from = path.join(src, name);
    if (!fs.statSync(from).isFile() || OTHER_WEIGHT_FORMATS.test(name)) {
      skipped.push(name);
      continue;
    }
    fs.copyFileSync(from, path.join(dst, name));
    copied.push(name);
  }
  for (const e of plan) {
    const fd = fs.openSync(path.join(dst, e.file), 'r+');
    try {
      let done = 0;
      while (done < e.bytes.length) done += fs.writeSync(fd, e.bytes, done, e.bytes.length - done, e.byteOffset + done);
    } finally {
      fs.closeSync(fd);
    }
  }
  return { dir: dst, source: src, edited: plan.map(({ name, storedName, file, dtype }) => ({ name, storedName, file, dtype })), copied, skipped };
}

/** Float32 values as the checkpoint stores them (rounded to its F16/BF16, if so): what a reload reads. */
export function asStoredValues(source: string, edited: Map<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const e of planEdits(path.resolve(source), edited)) {
    if (e.dtype === 'F32') {
      out.set(e.name, edited.get(e.name)!);
      continue;
    }
    const wide = new Uint32Array(e.bytes.byteLength / 2);
    decodeHalfInto(e.dtype, new Uint16Array(e.bytes.buffer, e.bytes.byteOffset, wide.length), wide, 0);
    out.set(e.name, new Float32Array(wide.buffer));
  }
  return out;
}
