/**
 * One taped forward and one backward of a batch of base rows: the activations at the hooks and
 * ∂metric/∂activation there (from the engine's `gradients`), and the metric of each row.
 */
import { gradients } from '../../runtime/grad';
import type { HookFn } from '../../runtime/forward';
import type { Model } from '../../runtime/model';
import type { Tensor } from '../../runtime/tensor';
import { AttributionMetric, metricLoss } from './metrics';

export interface GradPass {
  acts: Map<string, Tensor>; // by hook name, [B,T,...] or [B,H,T,...]
  grads: Map<string, Tensor>; // same shapes
  values: number[]; // metric per row
}

/** `embed` optionally replaces the token embeddings [B,T,D] (integrated gradients' interpolation). */
export async function gradPass(
  model: Model, rows: number[][], pairOf: number[], metric: AttributionMetric, names: string[], embed?: (e: Tensor) => Tensor,
): Promise<GradPass> {
  const acts = new Map<string, Tensor>();
  const hooks: Array<[string, HookFn]> = names.map((n) => [n, (t: Tensor) => void acts.set(n, t)]);
  if (embed) hooks.unshift(['embed', (e: Tensor) => embed(e)]);
  const res = await gradients(model, rows, metricLoss(metric, pairOf), names, { hooks, logits: 'last' });
  return { acts, grads: res.grads, values: metricValues(res.logits, pairOf, metric) };
}

/** Metric of each row's last-position logits [B,1,V]. */
export function metricValues(logits: Tensor, pairOf: number[], metric: AttributionMetric): number[] {
  const V = logits.shape[2];
  return pairOf.map((p, b) => metric(logits.data.subarray(b * V, (b + 1) * V), p).value);
}
