/**
 * The on-disk cache of second-moment statistics. One safetensors file per (model identity, key
 * hook, corpus, sample count, document length), self-describing through its metadata:
 *
 *   $FACTLENS_CACHE/stats/<model name>/<key hook>.<corpus>-<corpus id>.n<samples>.len<maxLength>.<fingerprint>.safetensors
 *     mom2          F32 [d,d]  C = (1/n) Σ k kᵀ (summed in float64)
 *     cholesky_hi   F32 [d,d]  float64 Cholesky factor of C + jitter·I, split into hi + lo float32 parts
 *     cholesky_lo   F32 [d,d]
 *
 * The metadata holds each tensor's SHA-256 (`sha256_<name>`); readStats checks them, the shapes and
 * the counts, and a file that fails is recomputed with a note, never served.
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

/**
 * Hashed on every call, never memoised per array: `model.weight(name).data` is a plain typed array
 * that a user may edit in place, and a memo keyed on the array would keep serving the statistics
 * of the weights before that edit (SHA-256 runs at ~1 GB/s; see the README's limitations).
 */
function tensorHash(t: Tensor): string {
  return sha256(t.data);
}

function sha256(a: Float32Array): string {
  return crypto.createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
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

/** Why a cache file cannot be used (it is then recomputed and rewritten), for the note readStats gives. */
export type CorruptNote = (file: string, reason: string) => void;

const warnCorrupt: CorruptNote = (file, reason) => console.warn(`factlens: ROME statistics cache ${file} is unusable (${reason}); recomputing it`);

/** The tensors of a stats file and their shape [dim, dim]. */
const STORED = ['mom2', 'cholesky_hi', 'cholesky_lo'] as const;

/**
 * A cache file's statistics, or null: absent, made for other settings (a different key; silent), or
 * corrupt (`onCorrupt` is told why). Every tensor is checked against its SHA-256 in the metadata, its
 * shape against `dim`, and `count`, `dim` and the values for sanity, so a flipped bit is never served.
 */
export function readStats(file: string, expect: StatsKey, onCorrupt: CorruptNote = warnCorrupt): StoredStats | null {
  if (!fs.existsSync(file)) return null;
  let f: SafetensorsFile | null = null;
  try {
    f = SafetensorsFile.open(file);
    const md = f.metadata;
    if (md.format !== STATS_FORMAT || md.fingerprint !== expect.fingerprint || md.key_hook !== expect.keyHook || Number(md.samples) !== expect.samples) return null;
    const problem = checkMetadata(f, md);
    if (problem) {
      onCorrupt(file, problem);
      return null;
    }
    const dim = Number(md.dim);
    const read = (name: string): Float32Array => {
      const data = f!.readFloat32(name); // [dim*dim]
      if (sha256(data) !== md[`sha256_${name}`]) throw new StatsCorrupt(`tensor "${name}" does not match its checksum`);
      if (!data.every(Number.isFinite)) throw new StatsCorrupt(`tensor "${name}" holds NaN or infinite values`);
      return data;
    };
    const mom2 = read('mom2');
    const factor = f.has('cholesky_hi') ? { n: dim, L: joinF64(read('cholesky_hi'), read('cholesky_lo')), jitter: Number(md.jitter ?? 0) } : undefined;
    return { mom2, dim, count: Number(md.count), factor, metadata: md };
  } catch (e) {
    onCorrupt(file, e instanceof StatsCorrupt ? e.message : `unreadable: ${(e as Error).message}`);
    return null;
  } finally {
    f?.close();
  }
}

class StatsCorrupt extends Error {}

/** What is wrong with a stats file's layout and metadata, or null. */
function checkMetadata(f: SafetensorsFile, md: Record<string, string>): string | null {
  const dim = Number(md.dim);
  const count = Number(md.count);
  if (!Number.isSafeInteger(dim) || dim <= 0) return `metadata "dim" ${JSON.stringify(md.dim)} is not a positive integer`;
  if (!Number.isSafeInteger(count) || count <= 0) return `metadata "count" ${JSON.stringify(md.count)} is not a positive integer`;
  if (!(Number(md.jitter ?? 0) >= 0)) return `metadata "jitter" ${JSON.stringify(md.jitter)} is not a non-negative number`;
  if (!f.has('mom2')) return 'no tensor "mom2"';
  if (f.has('cholesky_hi') !== f.has('cholesky_lo')) return 'only one of "cholesky_hi" and "cholesky_lo"';
  for (const name of STORED) {
    if (!f.has(name)) continue;
    const { dtype, shape } = f.info(name);
    if (dtype !== 'F32' || shape.length !== 2 || shape[0] !== dim || shape[1] !== dim) return `tensor "${name}" is ${dtype} [${shape}], expected F32 [${dim}, ${dim}]`;
    if (typeof md[`sha256_${name}`] !== 'string') return `no checksum "sha256_${name}" in the metadata (written before checksums?)`;
  }
  return null;
}

export function writeStats(file: string, key: StatsKey, s: { mom2: Float32Array; dim: number; count: number; factor?: Cholesky }, extra: Record<string, string> = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const arrays: Record<string, Float32Array> = { mom2: s.mom2 }; // each [dim,dim]
  if (s.factor) {
    const { hi, lo } = splitF64(s.factor.L);
    arrays.cholesky_hi = hi;
    arrays.cholesky_lo = lo;
  }
  const tensors: Parameters<typeof writeSafetensors>[1] = {};
  for (const [name, data] of Object.entries(arrays)) tensors[name] = { dtype: 'F32', shape: [s.dim, s.dim], data };
  const metadata: Record<string, string> = {
    format: STATS_FORMAT,
    description: 'Uncentred second moment C = E[k k^T] of the input k of a ROME-edited matrix over a text corpus (mom2), and the Cholesky factor of C + jitter*I as float32 hi + lo parts.',
    model: key.model, fingerprint: key.fingerprint, layer: String(key.layer), key_hook: key.keyHook,
    corpus: key.corpus, corpus_id: key.corpusId, samples: String(key.samples), max_length: String(key.maxLength),
    dim: String(s.dim), count: String(s.count), jitter: String(s.factor?.jitter ?? 0), sum_dtype: 'float64',
    ...checksums(arrays),
    created: new Date().toISOString(), ...extra,
  };
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`; // renamed into place: a reader never sees a partial file
  writeSafetensors(tmp, tensors, metadata);
  fs.renameSync(tmp, file);
}

/** `sha256_<name>` of each tensor's float32 bytes, checked by readStats. */
function checksums(tensors: Record<string, Float32Array>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, data] of Object.entries(tensors)) out[`sha256_${name}`] = sha256(data);
  return out;
}
