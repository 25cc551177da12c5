/**
 * Normalisation layers written with primitive ops (so autodiff covers them), in the exact patterns
 * onnxruntime fuses into its LayerNormalization / SimplifiedLayerNormalization kernels.
 */
import { Graph, Value } from '../graph/ir';

/** RMSNorm: x ⊙ w / sqrt(mean(x²) + eps), over the last axis; without `w`, weightless (Falcon-Mamba's mixer norms). */
export function rmsNorm(g: Graph, x: Value, w: Value | undefined, eps: number): Value {
  const ms = g.reduceMean(g.square(x), [-1], true); // [...,1]
  const normed = g.div(x, g.sqrt(g.add(ms, g.scalar(eps)))); // [...,D]
  return w === undefined ? normed : g.mul(normed, w);
}

/**
 * LayerNorm: (x − mean) / sqrt(var + eps) ⊙ w + b, over the last axis (biased variance).
 * `fusable: false` writes the variance with x·x, which onnxruntime leaves unfused: for norms whose
 * fusion would depend on how a layer is cut into segments at hook points (Pythia's two parallel
 * norms of one input share their statistics in a whole layer, not in a cut one), so that every
 * segmentation gives bit-identical numbers.
 */
export function layerNorm(g: Graph, x: Value, w: Value, b: Value, eps: number, fusable = true): Value {
  const centred = g.sub(x, g.reduceMean(x, [-1], true)); // [...,D]
  const variance = g.reduceMean(fusable ? g.square(centred) : g.mul(centred, centred), [-1], true); // [...,1]
  return g.add(g.mul(g.div(centred, g.sqrt(g.add(variance, g.scalar(eps)))), w), b);
}
