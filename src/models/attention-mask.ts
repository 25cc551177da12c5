import type { ModelConfig } from '../io/config-types';
/**
 * Additive attention masks [B,1,T,T] (0 where query i may read key j, −1e9 where not): causal, without
 * the padding after each row's last real token, and for sliding-window layers without keys more than
 * w − 1 positions back (transformers' sliding_window_overlay: j > i − w).
 */
export function attentionMask(lengths: readonly number[], T: number, window?: number): Float32Array {
  const B = lengths.length;
  const mask = new Float32Array(B * T * T); // [B,1,T,T]
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        const hidden = j > i || j >= lengths[b] || (window !== undefined && j <= i - window);
        if (hidden) mask[(b * T + i) * T + j] = -1e9;
      }
    }
  }
  return mask;
}

/** The sliding window w of layer l, or undefined where the layer attends to every earlier key. */
export function slidingWindowAt(c: ModelConfig, layer: number): number | undefined {
  if (!('slidingWindow' in c) || c.slidingWindow === undefined) return undefined;
  return 'slidingLayers' in c && c.slidingLayers?.includes(layer) ? c.slidingWindow : undefined;
}
