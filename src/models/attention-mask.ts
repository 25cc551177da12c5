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
