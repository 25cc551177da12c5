/**
 * Packed weights, for plain forwards: a model loaded with
 * `Model.load(dir, { packed: true })` runs forwards that hook, record and
 * edit nothing through layer graphs whose weights are ONNX initializers
 * instead of graph inputs. onnxruntime then packs each matrix for its GEMM
 * once, when the session is created, instead of on every call (measured at
 * batch 1: pythia-160m 49 → 41 ms, neox-facts 4.3 → 3.4 ms, mamba-130m
 * 69 → 65 ms; at batch 32 no gain). The cost is memory: onnxruntime keeps
 * more than the packed copy (measured: mamba-130m's 363 MB of layer weights
 * take ~1.2 GB in its sessions), so peak RSS is 2–3.5× the weights instead of
 * 1.1–2×. The layer weights are not kept in JavaScript (see weight-store.ts)
 * until a hook, gradient or edit reads them.
 *
 * GPT-NeoX layers are compiled in stacks of up to CHUNK_BYTES of weights per
 * session (bounding the transient memory of compiling one); Mamba layers one
 * by one (the native scan cuts each layer anyway). The head is not packed: it
 * reads the embedding matrices, which stay resident for the token lookup.
 */
import type { StageDef } from './stage';
import type { Tensor } from './tensor';
import { releaseCompiled } from './stage';

/** Weight bytes compiled into one session at most (a layer bigger than this gets its own). */
const CHUNK_BYTES = 64 * 2 ** 20;
let nextId = 0;

export class PackedWeights {
  private readonly id = `packed${nextId++}`;
  private readonly stages = new Map<string, StageDef>();

  constructor(
    private readonly layerBytes: number,
    /** A weight by full name, read without keeping it in JavaScript. */
    private readonly read: (name: string) => Tensor,
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
        build: (g, io) => def.build(g, { ...io, weight: (name, shape) => g.constant(this.read(prefix + name).data, shape as number[]) }),
      };
      this.stages.set(key, s);
    }
    return s;
  }

  /** Free the sessions (and their packed weights). */
  async release(): Promise<void> {
    this.stages.clear();
    await releaseCompiled((key) => key.includes(`|${this.id}:`));
  }
}
