/**
 * GradDrop (Kramár et al. 2024, §3.1.2): AtP's gradient can cancel along different paths, hiding
 * real effects (false negatives). For each layer ℓ the gradient is recomputed with the backward
 * flow through ℓ's residual contribution stopped, and the estimate is the mean magnitude
 *   ĉ_GD(n) = 1/(L−1) Σ_ℓ |(a_source − a_base) · ∂m/∂a |_{ℓ dropped}|.
 * Every path through the contribution o_ℓ passes it once, so the dropped gradient is
 *   ∂m/∂a − (∂m/∂o_ℓ)ᵀ ∂o_ℓ/∂a,
 * one more backward per layer seeded at o_ℓ with its own gradient. o_ℓ is mixer.out (Mamba) or
 * attn.out + mlp.out (parallel-residual GPT-NeoX, where no path runs through both).
 */
import { FactlensError } from '../../errors';
import type { HookFn } from '../../runtime/forward';
import type { Model } from '../../runtime/model';
import { Tape } from '../../runtime/tape';
import { Tensor } from '../../runtime/tensor';
import type { GradPass } from './grad-pass';
import { metricValues } from './grad-pass';
import { hookOf } from './kinds';
import { AttributionMetric, metricLoss } from './metrics';

export interface GradDropPass extends GradPass {
  /** [ℓ] → hook name → ∂m/∂a with layer ℓ's contribution's backward flow stopped. */
  dropped: Map<string, Tensor>[];
}

/** The hooks of layer ℓ whose sum is its residual contribution. */
export function contributionHooks(model: Model, layer: number): string[] {
  if (model.recurrent) return [hookOf('mixer.out', layer)];
  if (!model.parallelResidual) throw new FactlensError('GradDrop supports Mamba and parallel-residual GPT-NeoX models (a sequential-residual layer has paths through both attn.out and mlp.out)');
  return [hookOf('attn.out', layer), hookOf('mlp.out', layer)];
}

export async function gradDropPass(model: Model, rows: number[][], pairOf: number[], metric: AttributionMetric, names: string[]): Promise<GradDropPass> {
  const L = model.nLayers;
  const contribs = Array.from({ length: L }, (_, l) => contributionHooks(model, l));
  const all = [...new Set([...names, ...contribs.flat()])];
  const acts = new Map<string, Tensor>();
  // Identity write hooks: each point becomes a segment boundary, so its tensor is a tape leaf.
  const hooks: Array<[string, HookFn]> = all.map((n) => [n, (t: Tensor) => void acts.set(n, t)]);
  const tape = new Tape();
  const batch = model.batch(rows);
  const res = await model.run(batch, { hooks, tape, logits: 'last' });
  const { grad } = metricLoss(metric, pairOf)(res.logits!, batch);
  const leaves = names.map((n) => acts.get(n)!);
  const fullAll = await tape.backward(new Map([[res.logits!, grad]]), all.map((n) => acts.get(n)!));
  const full = new Map(all.map((n, i) => [n, fullAll[i]]));
  const dropped: Map<string, Tensor>[] = [];
  for (const c of contribs) {
    const seeds = new Map(c.map((n) => [acts.get(n)!, full.get(n)!]));
    const through = await tape.backward(seeds, leaves); // (∂m/∂o_ℓ)ᵀ ∂o_ℓ/∂a
    dropped.push(new Map(names.map((n, i) => {
      const g = full.get(n)!;
      return [n, new Tensor(g.data.map((x, j) => x - through[i].data[j]), g.shape)];
    })));
  }
  return { acts, grads: new Map(names.map((n) => [n, full.get(n)!])), values: metricValues(res.logits!, pairOf, metric), dropped };
}
