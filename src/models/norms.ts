/** Normalisation layers written with primitive ops (so autodiff covers them). */
import { Graph, Value } from '../graph/ir';

/** RMSNorm: x ⊙ w / sqrt(mean(x²) + eps), over the last axis. */
export function rmsNorm(g: Graph, x: Value, w: Value, eps: number): Value {
  const ms = g.reduceMean(g.mul(x, x), [-1], true); // [...,1]
  return g.mul(g.div(x, g.sqrt(g.add(ms, g.scalar(eps)))), w);
}

/** LayerNorm: (x − mean) / sqrt(var + eps) ⊙ w + b, over the last axis (biased variance). */
export function layerNorm(g: Graph, x: Value, w: Value, b: Value, eps: number): Value {
  const centred = g.sub(x, g.reduceMean(x, [-1], true)); // [...,D]
  const variance = g.reduceMean(g.mul(centred, centred), [-1], true); // [...,1]
  return g.add(g.mul(g.div(centred, g.sqrt(g.add(variance, g.scalar(eps)))), w), b);
}
