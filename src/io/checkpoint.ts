/**
 * A checkpoint directory (config.json + safetensors weights [+ tokenizer.json])
 * seen through canonical, prefix-free weight names. Tensors stay on disk until
 * readFloat32 streams one.
 */
import fs from 'fs';
import path from 'path';
import { CheckpointError } from './errors';
import { readConfigFile } from './config';
import { ModelConfig } from './config-types';
import { SafetensorsFile, TensorInfo } from './safetensors';
import { openWeightFiles } from './checkpoint-files';
import { canonicalName, embeddingName, expectedWeights, isStoredTransposed, unembeddingName } from './weights';
import { FloatDtype, isFloatDtype } from './dtypes';
import type { ExternalTensor } from '../graph/ir';
import { Tokenizer } from './tokenizer';
import { describeNonFinite, firstNonFinite } from './finite';

export interface CheckpointTensorInfo extends TensorInfo {
  /** Path of the safetensors file holding it. */
  file: string;
  /** Its name inside that file, e.g. "backbone.layers.0.norm.weight". */
  storedName: string;
}

interface Entry {
  file: SafetensorsFile;
  storedName: string;
}

/** Vocab sizes are commonly rounded up to one of these multiples for GPU efficiency. */
const VOCAB_PAD_MULTIPLES = [8, 16, 32, 64, 128];

/** Validation lists at most this many problems before summarising. */
const MAX_LISTED_PROBLEMS = 25;

export class Checkpoint {
  /** Notes about adjustments made while opening (e.g. vocab padding), for logs. */
  readonly notes: string[] = [];
  readonly config: ModelConfig;
  private readonly warned = new Set<string>();

  constructor(
    readonly dir: string,
    config: ModelConfig,
    private readonly files: SafetensorsFile[],
    private readonly entries: Map<string, Entry>,
    /** Stored names skipped as known buffers (e.g. attention.masked_bias). */
    readonly ignoredTensors: string[],
    /** Load weights holding NaN/±Inf with a warning instead of refusing them. */
    private readonly allowNonFinite = false,
  ) {
    this.config = adoptPaddedVocab(config, this.entries, this.notes);
  }

  /** Canonical names of every weight present, in file order. */
  tensorNames(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    const e = this.entry(name);
    return { ...e.file.info(e.storedName), file: e.file.path, storedName: e.storedName };
  }

  /** One weight as float32, streamed from disk (F16/BF16 widened exactly); NaN/±Inf refused (see checkFinite). */
  readFloat32(name: string): Float32Array {
    const e = this.entry(name);
    e.file.checkUnchanged(); // a packed model reads weights long after load
    const out = e.file.readFloat32(e.storedName);
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    const i = firstNonFinite('F32', bytes);
    if (i >= 0) this.nonFinite(name, i, describeNonFinite('F32', bytes, i));
    if (!isStoredTransposed(name, this.config.arch)) return out;
    const [rows, cols] = e.file.info(e.storedName).shape; // stored [in,out]
    return transpose2d(out, rows, cols); // [out,in]
  }

  /**
   * Throws if a weight holds NaN or ±Inf (every logit would be non-finite), scanning its stored
   * bytes in bounded chunks; with `allowNonFinite` it warns once per weight instead.
   */
  checkFinite(name: string): void {
    const e = this.entry(name);
    const bad = e.file.findNonFinite(e.storedName);
    if (bad) this.nonFinite(name, bad.index, bad.value);
  }

  /** Rows of a 2-D weight (e.g. embedding rows for token ids) as float32 [rows.length, C]. */
  readRowsFloat32(name: string, rows: ArrayLike<number>): Float32Array {
    const e = this.entry(name);
    e.file.checkUnchanged(); // a packed model reads embedding rows on every forward
    return e.file.readRowsFloat32(e.storedName, rows);
  }

  /**
   * Where a float weight lies in its safetensors file, for onnxruntime to read
   * it from there itself (external data): absolute path, offset, length, dtype. The bytes are as
   * stored: a Conv1D weight (isStoredTransposed) is [in,out], which the caller transposes.
   */
  external(name: string): ExternalTensor {
    const t = this.info(name);
    this.entry(name).file.checkUnchanged(); // onnxruntime opens the path itself
    const dtype = ({ F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const)[t.dtype as FloatDtype];
    if (!dtype) throw new CheckpointError(`${t.file}: tensor "${t.storedName}" has dtype ${t.dtype}; only F32, F16 and BF16 weights can be read`);
    // The real path: onnxruntime refuses external data whose path leaves the folder it resolves
    // names in, and the hub cache's snapshots/<rev>/model.safetensors is a link to ../../blobs/<sha>.
    return { file: fs.realpathSync(t.file), offset: t.byteOffset, length: t.byteLength, dtype };
  }

  /**
   * The canonical name of the output (unembedding) matrix [V, D]. With tied
   * embeddings it is the input embedding, as in transformers, even when the
   * file also stores lm_head.weight.
   */
  outputEmbeddingName(): string {
    return this.config.tieEmbeddings ? embeddingName(this.config.arch) : unembeddingName(this.config.arch);
  }

  /** Throws one error listing every missing, misshapen, non-float or unexpected weight. */
  validate(): void {
    this.checkLayerCount(); // before expectedWeights, which lists every configured layer's weights
    const expected = expectedWeights(this.config);
    const problems: string[] = [];
    for (const [name, shape] of expected) {
      if (!this.entries.has(name)) problems.push(`missing weight "${name}" ${fmt(shape)}`);
      else this.checkTensor(name, shape, problems);
    }
    const tiedOutput = unembeddingName(this.config.arch);
    for (const name of this.entries.keys()) {
      if (expected.has(name)) continue;
      if (name === tiedOutput && this.config.tieEmbeddings) {
        // A tied model may still store the output matrix; it must at least have the right shape.
        this.checkTensor(name, [this.config.vocabSize, this.config.dModel], problems);
        continue;
      }
      const e = this.entries.get(name)!;
      problems.push(`unexpected tensor "${e.storedName}" in ${e.file.path} (not a ${this.config.arch} weight for this config)`);
    }
    if (problems.length === 0) return;
    const shown = problems.slice(0, MAX_LISTED_PROBLEMS);
    if (problems.length > shown.length) shown.push(`... and ${problems.length - shown.length} more`);
    throw new CheckpointError(`${this.dir}: weights do not match config.json (${describeConfig(this.config)}):\n  - ${shown.join('\n  - ')}`);
  }

  /**
   * The configured layer count against the layers the files hold: a corrupt count (1e9) must fail
   * here, in time proportional to the file, not to the count.
   */
  private checkLayerCount(): void {
    const layers = new Set<number>();
    for (const name of this.entries.keys()) {
      const m = /^layers\.(\d+)\./.exec(name);
      if (m) layers.add(Number(m[1]));
    }
    const n = this.config.nLayer;
    if (n === layers.size && (n === 0 || layers.has(n - 1))) return;
    const last = [...layers].reduce((a, b) => Math.max(a, b), -1);
    const held = layers.size ? `${layers.size} layers (largest index ${last})` : 'no layer weights';
    throw new CheckpointError(`${this.dir}: config.json says ${n} layers (field ${this.config.arch === 'mamba' ? '"num_hidden_layers" / "n_layer"' : '"num_hidden_layers"'}) but the weights hold ${held}`);
  }

  /** Throws if the tokenizer can produce ids the model has no embedding row for. */
  checkTokenizer(tokenizer: Tokenizer): void {
    if (tokenizer.vocabSize <= this.config.vocabSize) return;
    throw new CheckpointError(
      `${tokenizer.file}: the tokenizer has ids up to ${tokenizer.vocabSize - 1}, but the model's vocabulary (config "vocab_size" / embedding rows) is ${this.config.vocabSize}; wrong tokenizer.json for this checkpoint?`,
    );
  }

  hasTokenizer(): boolean {
    return fs.existsSync(path.join(this.dir, 'tokenizer.json'));
  }

  /** The tokenizer stored with the checkpoint. Original state-spaces checkpoints have none: use the GPT-NeoX-20B one. */
  loadTokenizer(): Tokenizer {
    if (!this.hasTokenizer()) {
      throw new CheckpointError(
        `${this.dir}: no tokenizer.json here; real Mamba and Pythia checkpoints use the GPT-NeoX-20B tokenizer ` +
          '(Tokenizer.fromDir("data/gpt_neox_20b_tokenizer"))',
      );
    }
    return Tokenizer.fromDir(this.dir);
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  private nonFinite(name: string, index: number, value: string): void {
    const e = this.entry(name);
    const what = `${e.file.path}: tensor "${e.storedName}" element ${index} is ${value}`;
    if (!this.allowNonFinite) throw new CheckpointError(`${what}; every output would be non-finite (load with { allowNonFinite: true } to inspect it anyway)`);
    if (this.warned.has(name)) return;
    this.warned.add(name);
    this.notes.push(`${what} (allowed by allowNonFinite)`);
    console.warn(`factlens: ${what}; loaded anyway because allowNonFinite is set`);
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (e === undefined) throw new CheckpointError(`${this.dir}: no weight named "${name}" (canonical names look like "${this.tensorNames()[0]}")`);
    return e;
  }

  private checkTensor(name: string, shape: number[], problems: string[]): void {
    const t = this.info(name);
    const where = `"${name}" (stored as "${t.storedName}" in ${t.file})`;
    if (isStoredTransposed(name, this.config.arch)) shape = [...shape].reverse(); // Conv1D [in,out]
    if (!sameShape(t.shape, shape)) problems.push(`${where}: shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
    if (!isFloatDtype(t.dtype)) problems.push(`${where}: dtype ${t.dtype}, expected F32, F16 or BF16`);
  }
}

/** Open a checkpoint directory: reads config.json and the safetensors headers, no tensor data. */
export function openCheckpoint(dir: string, opts: { allowNonFinite?: boolean } = {}): Checkpoint {
  // A relative path resolves against the working directory (a notebook's is its own folder): say both.
  const where = path.isAbsolute(dir) ? dir : `${dir} (resolved to ${path.resolve(dir)} from the working directory ${process.cwd()})`;
  if (!fs.existsSync(dir)) throw new CheckpointError(`${where}: checkpoint directory not found`);
  if (!fs.statSync(dir).isDirectory()) throw new CheckpointError(`${where}: not a directory; point at the folder holding config.json`);
  const configPath = path.join(dir, 'config.json');
  if (!fs.existsSync(configPath)) throw new CheckpointError(`${where}: no config.json in this checkpoint directory`);
  const config = readConfigFile(configPath);
  const { files, location } = openWeightFiles(dir);
  try {
    const entries = new Map<string, Entry>();
    const ignored: string[] = [];
    for (const [stored, fileName] of location) {
      const name = canonicalName(stored, config.arch);
      if (name === null) {
        ignored.push(stored);
        continue;
      }
      const prev = entries.get(name);
      if (prev !== undefined) {
        throw new CheckpointError(`${dir}: "${prev.storedName}" (${prev.file.path}) and "${stored}" (${fileName}) are both weight "${name}"`);
      }
      entries.set(name, { file: files.get(fileName)!, storedName: stored });
    }
    return new Checkpoint(dir, config, [...files.values()], entries, ignored, opts.allowNonFinite);
  } catch (e) {
    for (const f of files.values()) f.close();
    throw e;
  }
}

/**
 * Decision on vocab padding: the embedding's row count is the truth when it is
 * config's vocab rounded up to a multiple of 8..128 (e.g. a config saying 50277
 * over a 50280-row embedding). Rows beyond the tokenizer are never produced by
 * it. Any other mismatch is left for validate() to report.
 */
function adoptPaddedVocab(config: ModelConfig, entries: Map<string, Entry>, notes: string[]): ModelConfig {
  const e = entries.get(embeddingName(config.arch));
  if (e === undefined) return config;
  const rows = e.file.info(e.storedName).shape[0];
  const v = config.vocabSize;
  if (rows === undefined || rows <= v || !VOCAB_PAD_MULTIPLES.some((m) => Math.ceil(v / m) * m === rows)) return config;
  notes.push(`config vocab_size ${v} is padded to ${rows}, the row count of "${e.storedName}" in ${e.file.path}`);
  return { ...config, vocabSize: rows };
}

function describeConfig(c: ModelConfig): string {
  return `${c.arch}, ${c.nLayer} layers, d_model ${c.dModel}, vocab ${c.vocabSize}`;
}

/** [rows,cols] → [cols,rows]. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length); // [cols,rows]
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fmt(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}
