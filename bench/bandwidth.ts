/**
 * The machine's memory bandwidth as the issue counts it for decoding: bytes of a large Float32Array
 * copied per second (best of a few copies of 256 MiB, far beyond the caches). A batch-1 float32
 * decode step reads every weight once, so bandwidth / weight bytes bounds batch-1 tokens/s.
 */
export function copyBandwidth(bytes = 256 * 2 ** 20, reps = 5): number {
  const src = new Float32Array(bytes / 4).fill(1); // touched so its pages exist
  const dst = new Float32Array(bytes / 4).fill(0);
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - t0);
  }
  return bytes / (best / 1000);
}
