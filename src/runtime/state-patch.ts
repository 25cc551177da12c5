/**
 * Patching Mamba's recurrent state at a position: the layer runs in chunks
 * of time, and between chunks the carried SSM state (and optionally the conv
 * state, the last K−1 conv inputs) is handed to the patch function. Every
 * later position of that layer then sees the patched state, exactly as if the
 * prefix had produced it.
 */
import { FactlensError } from '../errors';
import { concatTime, sliceTime, Tensor } from './tensor';
import { runStage, StagePlan } from './run-stage';
import type { Model } from './model';
import type { Tape } from './tape';

export interface StatePatch {
  layer: number;
  /** The state after this token is replaced. */
  position: number;
  ssm?: (state: Tensor) => Tensor | void; // [B,E,N]
  conv?: (convState: Tensor) => Tensor | void; // [B,K−1,E]
}

export interface ChunkedResult {
  outs: Record<string, Tensor>;
  reads: Map<string, Tensor>;
}

export async function runLayerInChunks(
  model: Model,
  layer: number,
  acts: Record<string, Tensor>,
  plan: StagePlan,
  patches: StatePatch[],
  tape?: Tape,
): Promise<ChunkedResult> {
  if (plan.writes.size) throw new FactlensError(`layer ${layer}: hooks that rewrite activations cannot be combined with a state patch in the same layer`);
  const resid = acts.resid_pre; // [B,T,D]
  const T = resid.shape[1];
  const cuts = [...new Set(patches.map((p) => p.position))].sort((a, b) => a - b);
  for (const p of cuts) if (p < 0 || p >= T) throw new FactlensError(`state patch at layer ${layer}: position ${p} is out of range 0..${T - 1}`);
  let conv = acts.conv_state;
  let ssm = acts.ssm_state;
  const posts: Tensor[] = [];
  const reads = new Map<string, Tensor[]>();
  const bounds = [...cuts.map((p) => p + 1), T].filter((e, i, a) => i === 0 || e > a[i - 1]);
  let start = 0;
  for (const end of bounds) {
    if (end > start) {
      const chunk = sliceTime(resid, start, end);
      tape?.recordJs([resid], [chunk], ([g]) => [padTime(g!, start, T)]);
      const res = await runStage(model.layerStage, { resid_pre: chunk, conv_state: conv, ssm_state: ssm }, (w) => model.weight(`layers.${layer}.${w}`), { ...plan, outs: undefined }, tape);
      posts.push(res.outs.resid_post);
      for (const [k, v] of res.reads) reads.set(k, [...(reads.get(k) ?? []), v]);
      conv = res.outs.conv_state;
      ssm = res.outs.ssm_state;
    }
    for (const p of patches.filter((q) => q.position === end - 1)) {
      ssm = p.ssm?.(ssm) ?? ssm;
      conv = p.conv?.(conv) ?? conv;
    }
    start = end;
  }
  const post = concatTime(posts);
  tape?.recordJs(posts, [post], ([g]) => splitTime(g!, posts.map((p) => p.shape[1])));
  const joined = new Map<string, Tensor>();
  for (const [k, v] of reads) joined.set(k, concatTime(v));
  return { outs: { resid_post: post, conv_state: conv, ssm_state: ssm }, reads: joined };
}

function padTime(g: Tensor, start: number, T: number): Tensor {
  const parts: Tensor[] = [];
  const [B, n] = g.shape;
  const rest = g.shape.slice(2);
  if (start > 0) parts.push(Tensor.zeros([B, start, ...rest]));
  parts.push(g);
  if (start + n < T) parts.push(Tensor.zeros([B, T - start - n, ...rest]));
  return concatTime(parts);
}

function splitTime(g: Tensor, sizes: number[]): Tensor[] {
  let off = 0;
  return sizes.map((s) => sliceTime(g, off, (off += s)));
}
