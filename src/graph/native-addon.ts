/**
 * The optional C++ addon in native/ (built by `npm install` with node-gyp
 * when a C++ compiler is present): Mamba's selective scan (native-scan.ts)
 * and the malloc thresholds (malloc-tuning.ts). Everything has a fallback
 * when it is missing; FACTLENS_NATIVE=0 disables it.
 */
import path from 'path';
import { createRequire } from 'module';

export interface NativeAddon {
  scanForward(...args: unknown[]): void;
  scanBackward(...args: unknown[]): void;
  keepLargeBuffers(mmapThreshold: number, trimThreshold: number): boolean;
}

const ADDON = path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'factlens_scan.node');
let addon: NativeAddon | null | undefined;

/** The addon, or null when it is not built (or disabled with FACTLENS_NATIVE=0). */
export function nativeAddon(): NativeAddon | null {
  if (addon === undefined) {
    try {
      addon = process.env.FACTLENS_NATIVE === '0' ? null : (createRequire(ADDON)(ADDON) as NativeAddon);
    } catch {
      addon = null;
    }
  }
  return addon;
}
