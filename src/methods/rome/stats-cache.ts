/**
 * The on-disk cache of second-moment statistics. One safetensors file per (model identity, key
 * hook, corpus, sample count, document length), self-describing through its metadata:
 *
 *   $FACTLENS_CACHE/stats/<model name>/<key hook>.<corpus>-<corpus id>.n<samples>.len<maxLength>.<fingerprint>.safetensors
 *     mom2          F32 [d,d]  C = (1/n) Σ k kᵀ (summed in float64)
 *     cholesky_hi   F32 [d,d]  float64 Cholesky factor of C + jitter·I, split into hi + lo float32 parts
 *     cholesky_lo   F32 [d,d]
 *
 * FACTLENS_CACHE defaults to <project>/.cache/factlens. The model identity is a SHA-256 fingerprint
 * of the config and of every weight the keys depend on (embeddings, earlier layers, and the layer's
 * own weights before the key), so edits of the matrix itself (sequential edits) still hit the cache,
 * while any other change of the weights misses it.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { SafetensorsFile, writeSafetensors } from '../../io/safetensors';
import type { Model } from '../../runtime/model';
import type { Tensor } from '../../runtime/tensor';
import { Cholesky, joinF64, splitF64 } from './linalg';

export const STATS_FORMAT = 'factlens-rome-mom2/1';

export function cacheRoot(): string {
  return process.env.FACTLENS_CACHE ? path.resolve(process.env.FACTLENS_CACHE) : path.resolve(__dirname, '..', '..', '..', '.cache', 'factlens');
}

const tensorHashes = new WeakMap<Float32Array, string>();

function tensorHash(t: Tensor): string {
  let h = tensorHashes.get(t.data);
  if (!h) {
    h = crypto.createHash('sha256').update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex');
    tensorHashes.set(t.data, h);
  }
  return h;
}

/** Does the key at `keyHook` (layer l) depend on layer l's weight `local`? */
function feedsKey(keyHook: string, local: string): boolean {
  if (keyHook.endsWith('.norm')) return local === 'norm.weight' || local === 'norm.bias';
  if (keyHook.endsWith('mixer.out_proj_in')) return !local.startsWith('mixer.out_proj.');
  if (keyHook.endsWith('mlp.key')) return !local.startsWith('mlp.dense_4h_to_h.');
  return true;
}

/** SHA-256 (hex, 16 chars) of the config and the weights that determine the keys at `keyHook`. */
export function keyFingerprint(model: Model, keyHook: string, layer: number): string {
  const h = crypto.createHash('sha256').update(JSON.stringify(model.config));
  for (const name of model.weightNames().sort()) {
    const m = /^layers\.(\d+)\.(.*)$/.exec(name);
    if (m && (Number(m[1]) > layer || (Number(m[1]) === layer && !feedsKey(keyHook, m[2])))) continue;
    if (!m && !/embed/.test(name)) continue; // the head (norm_f, lm_head) comes after every key
    h.update(name).update(tensorHash(model.weight(name)));
  }
  return h.digest('hex').slice(0, 16);
}

export interface StatsKey {
  model: string;
  fingerprint: string;
  layer: number;
  keyHook: string;
  corpus: string;
  corpusId: string;
  samples: number;
  maxLength: number;
}

export function statsPath(k: StatsKey, root = cacheRoot()): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');
  return path.join(root, 'stats', safe(k.model), `${k.keyHook}.${safe(k.corpus)}-${k.corpusId}.n${k.samples}.len${k.maxLength}.${k.fingerprint}.safetensors`);
}

export interface StoredStats {
  mom2: Float32Array;
  dim: number;
  count: number;
  factor?: Cholesky;
  metadata: Record<string, string>;
}

export function readStats(file: string, expect: StatsKey): StoredStats | null {
  if (!fs.existsSync(file)) return null;
  let f: SafetensorsFile | null = null;
  try {
    f = SafetensorsFile.open(file);
    const md = f.metadata;
    if (md.format !== STATS_FORMAT || md.fingerprint !== expect.fingerprint || md.key_hook !== expect.keyHook || Number(md.samples) !== expect.samples) return null;
    const dim = Number(md.dim);
    const mom2 = f.readFloat32('mom2');
    const factor = f.has('cholesky_hi') ? { n: dim, L: joinF64(f.readFloat32('cholesky_hi'), f.readFloat32('cholesky_lo')), jitter: Number(md.jitter ?? 0) } : undefined;
    return { mom2, dim, count: Number(md.count), factor, metadata: md };
  } catch {
    return null; // unreadable or partial: recompute
  } finally {
    f?.close();
  }
}

export function writeStats(file: string, key: StatsKey, s: { mom2: Float32Array; dim: number; count: number; factor?: Cholesky }, extra: Record<string, string> = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tensors: Parameters<typeof writeSafetensors>[1] = { mom2: { dtype: 'F32', shape: [s.dim, s.dim], data: s.mom2 } };
  if (s.factor) {
    const { hi, lo } = splitF64(s.factor.L);
    tensors.cholesky_hi = { dtype: 'F32', shape: [s.dim, s.dim], data: hi };
    tensors.cholesky_lo = { dtype: 'F32', shape: [s.dim, s.dim], data: lo };
  }
  const metadata: Record<string, string> = {
    format: STATS_FORMAT,
    description: 'Uncentred second moment C = E[k k^T] of the input k of a ROME-edited matrix over a text corpus (mom2), and the Cholesky factor of C + jitter*I as float32 hi + lo parts.',
    model: key.model, fingerprint: key.fingerprint, layer: String(key.layer), key_hook: key.keyHook,
    corpus: key.corpus, corpus_id: key.corpusId, samples: String(key.samples), max_length: String(key.maxLength),
    dim: String(s.dim), count: String(s.count), jitter: String(s.factor?.jitter ?? 0), sum_dtype: 'float64',
    created: new Date().toISOString(), ...extra,
  };
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeSafetensors(tmp, tensors, metadata);
  fs.renameSync(tmp, file);
}
