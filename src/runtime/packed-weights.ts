/**
 * Packed weights, for plain forwards: a model loaded with
 * `Model.load(dir, { packed: true })` runs forwards that hook, record and
 * edit nothing through layer and head graphs whose weights are ONNX
 * initializers instead of graph inputs. onnxruntime then packs each matrix
 * for its GEMM once, when the session is created, instead of on every call
 * (1.5–2.3× faster products at 1–16 rows, the batch-1 case; no gain at batch 32).
 *
 * The initializers are external data that point into the checkpoint's own
 * safetensors files (raw little-endian tensors at known offsets), so
 * onnxruntime reads each weight from disk itself and keeps only its packed
 * copy: no float32 copy passes through JavaScript; the token lookup reads
 * embedding rows from the file. The first hook, gradient or edit that needs
 * a float32 weight retires the packed sessions, freed as soon as no plain
 * run is using them (runs in flight finish on the sessions they started
 * with), so it holds both copies of at most the weights read meanwhile;
 * from then on it runs like a default model (see weight-store.ts).
 *
 * GPT-2's Conv1D matrices are read as stored ([in,out]) and transposed in the graph.
 *
 * GPT-NeoX layers are compiled in stacks of up to CHUNK_BYTES of weights per
 * session (bounding the transient memory of compiling one); Mamba layers one
 * by one (the native scan cuts each layer anyway).
 */
import type { StageDef } from './stage';
import type { ExternalTensor, Graph, Value } from '../graph/ir';
import { releaseCompiled } from './stage';

/** Weight bytes compiled into one session at most (a layer bigger than this gets its own). */
const CHUNK_BYTES = 64 * 2 ** 20;
let nextId = 0;

export class PackedWeights {
  private readonly id = `packed${nextId++}`;
  private readonly stages = new Map<string, StageDef>();
  private isRetired = false;
  /** Plain runs now using the packed sessions: retire() waits for them (see begin()). */
  private inFlight = 0;
  private releaseWhenIdle = false;

  constructor(
    private readonly layerBytes: number,
    /** Where a weight (by full name) lies in the checkpoint's files. */
    private readonly locate: (name: string) => ExternalTensor,
    /** Weights stored [in,out] (GPT-2's Conv1D) where the graph reads [out,in]. */
    private readonly storedTransposed: (name: string) => boolean = () => false,
  ) {}

  /** Consecutive layer ranges [a, b) covering from..to-1, each at most CHUNK_BYTES of weights (at least one layer). */
  chunks(from: number, to: number): Array<[number, number]> {
    const per = Math.max(1, Math.floor(CHUNK_BYTES / this.layerBytes));
    const out: Array<[number, number]> = [];
    for (let a = from; a < to; a += per) out.push([a, Math.min(to, a + per)]);
    return out;
  }

  /** `def` with each weight `prefix + local` baked in as an initializer. */
  stage(def: StageDef, prefix = ''): StageDef {
    const key = `${def.key}|${this.id}:${prefix}`;
    let s = this.stages.get(key);
    if (!s) {
      s = {
        key,
        layoutOf: def, // its dry build would read every weight
        perLayer: true,
        build: (g, io) => def.build(g, { ...io, weight: (name, shape) => this.initializer(g, prefix + name, shape as number[]) }),
      };
      this.stages.set(key, s);
    }
    return s;
  }

  /**
   * A weight as an initializer read from the file. A Conv1D matrix is read as stored, [in,out], and
   * transposed in the graph (onnxruntime folds the Transpose into the initializer before packing it).
   */
  private initializer(g: Graph, name: string, shape: number[]): Value {
    if (!this.storedTransposed(name)) return g.external(this.locate(name), shape);
    const [out, inDim] = shape;
    return g.transpose(g.external(this.locate(name), [inDim, out]), [1, 0]); // [in,out] → [out,in]
  }

  /** Set once the model holds float32 weights: plain forwards run on those, never packed again. */
  get retired(): boolean {
    return this.isRetired;
  }

  /**
   * Free the sessions (and their packed weights); the next plain forward compiles them again.
   * With plain runs in flight, they are freed when the last one ends instead.
   */
  async release(): Promise<void> {
    if (this.inFlight > 0) {
      this.releaseWhenIdle = true;
      return;
    }
    await this.dispose();
  }

  private async dispose(): Promise<void> {
    this.releaseWhenIdle = false;
    this.stages.clear();
    await releaseCompiled((key) => key.includes(`|${this.id}:`));
  }

  /**
   * A plain run starts on the packed sessions; call the returned function when it ends (also on
   * failure). Sessions are never released under a run that is using them: a hooked run, gradient
   * or edit started meanwhile retires them only once every such run has finished.
   */
  begin(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.inFlight === 0 && this.releaseWhenIdle) void this.dispose();
    };
  }

  /**
   * Free the sessions for good: now when no plain run is using them (they are gone before any later
   * run starts), else as soon as the last one ends. Later plain forwards use float32 weights.
   */
  retire(): void {
    this.isRetired = true;
    void this.release();
  }
}
