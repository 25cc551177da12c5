/**
 * Keep large freed buffers in the heap instead of unmapping them.
 *
 * onnxruntime-node copies every output into a new ArrayBuffer. glibc serves
 * blocks over 32 MiB with their own mmap and unmaps them on free, so each
 * forward faults a large output in again page by page: [32,16,50304] logits
 * (103 MB) cost ~45 ms of page faults and zeroing per forward here, ~21 ms when
 * the block is reused. Raising glibc's mmap and trim thresholds (once per
 * process, through the native addon) lets the next run reuse the block.
 * Peak memory is unchanged. FACTLENS_MALLOC=system keeps glibc's defaults;
 * without the addon, or off glibc, nothing changes.
 */
import { nativeAddon } from './native-addon';

/** Blocks up to this size come from the heap, and this much free memory may stay at its top. */
const KEEP_BYTES = 1 << 30;
let tuned: boolean | undefined;

/** Apply the thresholds once; true when they are in effect. */
export function keepLargeBuffers(): boolean {
  if (tuned === undefined) {
    const lib = process.env.FACTLENS_MALLOC === 'system' ? null : nativeAddon();
    tuned = lib?.keepLargeBuffers ? lib.keepLargeBuffers(KEEP_BYTES, KEEP_BYTES) : false;
  }
  return tuned;
}
