/**
 * Integrated gradients over the input (EAP-IG, Hanna et al. 2024; Marks et al. 2024): the token
 * embeddings move from the base run's to the source run's in k steps, α = 0, 1/k, …, (k−1)/k (a
 * left Riemann sum, so k = 1 is plain AtP), and ∂m/∂a at every hook is averaged over the steps.
 * The estimate is (a_source − a_base) · mean_α ∂m/∂a(α): k backward passes instead of one.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import { GradPass, gradPass } from './grad-pass';
import type { AttributionMetric } from './metrics';

export async function integratedGradPass(
  model: Model, base: number[][], source: number[][], pairOf: number[], metric: AttributionMetric, names: string[], steps: number,
): Promise<GradPass> {
  if (!Number.isInteger(steps) || steps < 1 || steps > 1024) throw new FactlensError(`attribution: steps must be an integer in 1..1024, got ${steps}`);
  const eSource = model.embed(model.batch(source)); // [B,T,D]
  let first: GradPass | null = null;
  const sums = new Map<string, Float32Array>();
  for (let i = 0; i < steps; i++) {
    const alpha = i / steps;
    const lerp = (e: Tensor) => new Tensor(e.data.map((x, j) => x + alpha * (eSource.data[j] - x)), e.shape); // [B,T,D]
    const pass = await gradPass(model, base, pairOf, metric, names, i === 0 ? undefined : lerp);
    first ??= pass;
    for (const [n, g] of pass.grads) {
      const s = sums.get(n) ?? new Float32Array(g.size); // [B,...]
      for (let j = 0; j < g.size; j++) s[j] += g.data[j] / steps;
      sums.set(n, s);
    }
  }
  const grads = new Map([...sums].map(([n, s]) => [n, new Tensor(s, first!.grads.get(n)!.shape)]));
  return { acts: first!.acts, grads, values: first!.values };
}
