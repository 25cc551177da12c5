/**
 * Compile IR graphs into onnxruntime-node sessions and run them on plain
 * typed arrays. Inputs are passed zero-copy; outputs come back as new arrays.
 */
import * as ort from 'onnxruntime-node';
import { Graph } from './ir';
import { externalFolder, live, toOnnx } from './onnx';
import { Tensor, TensorData } from '../runtime/tensor';
import { keepLargeBuffers } from './malloc-tuning';

/** `externalFolder`: where the graph's external tensors' files are (see ExternalTensor). */
export function sessionOptions(externalFolder: string | null = null): ort.InferenceSession.SessionOptions {
  const threads = Number(process.env.FACTLENS_THREADS ?? 0);
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    // Idle worker threads sleep instead of spinning: measured on mamba-facts with other processes
    // running, spinning made a forward 2-7x slower (B=1: 165 vs 25 ms); FACTLENS_SPIN=1 restores it.
    extra: {
      session: {
        intra_op: { allow_spinning: process.env.FACTLENS_SPIN === '1' ? '1' : '0' },
        ...(externalFolder ? { model_external_initializers_file_folder_path: externalFolder } : {}),
      },
    },
    // FACTLENS_PROFILE=prefix writes onnxruntime's per-kernel JSON profile of every session (a developer knob).
    ...(process.env.FACTLENS_PROFILE ? { enableProfiling: true, profileFilePrefix: process.env.FACTLENS_PROFILE } : {}),
  };
}

export class Compiled {
  /** The graph inputs that must be fed (unused ones are pruned away). */
  readonly inputs: Graph['inputs'];

  private constructor(
    readonly graph: Graph,
    private readonly session: ort.InferenceSession,
  ) {
    this.inputs = live(graph).inputs;
  }

  /**
   * `arena: false` compiles without onnxruntime's memory arena: for graphs compiled once per layer
   * (packed weights), where each session's arena would keep its own batch-sized activation buffers.
   */
  static async create(g: Graph, opts: { arena?: boolean } = {}): Promise<Compiled> {
    keepLargeBuffers();
    const bytes = toOnnx(g);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, { ...sessionOptions(externalFolder(g)), ...(opts.arena === false ? { enableCpuMemArena: false } : {}) });
    } catch (e) {
      throw new Error(`onnxruntime rejected graph "${g.name}": ${(e as Error).message}`);
    }
    return new Compiled(g, session);
  }

  get inputNames(): string[] {
    return this.inputs.map((v) => v.name);
  }

  /** Run with named feeds; returns the requested outputs (all by default). */
  async run(feeds: Record<string, Tensor>, outputs?: string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const v of this.inputs) {
      const t = feeds[v.name];
      if (!t) throw new Error(`graph "${this.graph.name}": missing input "${v.name}"`);
      ortFeeds[v.name] = toOrt(t);
    }
    const names = outputs ?? this.graph.outputs.map((o) => o.name);
    const res = await this.session.run(ortFeeds, names);
    const out: Record<string, Tensor> = {};
    for (const n of names) {
      const r = res[n];
      out[n] = new Tensor(r.data as Float32Array, r.dims.map(Number));
    }
    return out;
  }

  /**
   * Run on onnxruntime tensors the caller made once (weights, state buffers) and write every output
   * into the caller's preallocated tensor of the right shape: nothing is wrapped or allocated per call.
   */
  async runInto(feeds: Record<string, ort.Tensor>, outputs: Record<string, ort.Tensor>): Promise<void> {
    await this.session.run(feeds, outputs);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** A zero-copy onnxruntime view of a tensor (int64, bool or float32 by its array type). */
export function toOrt(t: Tensor<TensorData>): ort.Tensor {
  if (t.data instanceof BigInt64Array) return new ort.Tensor('int64', t.data, t.shape);
  if (t.data instanceof Uint8Array) return new ort.Tensor('bool', t.data, t.shape);
  return new ort.Tensor('float32', t.data, t.shape);
}
