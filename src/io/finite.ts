/**
 * Finding NaN and ±Inf in stored floats by their bit patterns (all exponent
 * bits set), without widening: F32 0x7f800000, F16 0x7c00, BF16 0x7f80.
 */
import type { FloatDtype } from './dtypes';

const EXPONENT: Record<FloatDtype, number> = { F32: 0x7f800000, F16: 0x7c00, BF16: 0x7f80 };

/** Index of the first non-finite element of `raw` (whole elements of `dtype`, 4-byte aligned start), or -1. */
export function firstNonFinite(dtype: FloatDtype, raw: Uint8Array): number {
  const mask = EXPONENT[dtype];
  const words = dtype === 'F32' ? new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength >>> 2) : new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength >>> 1);
  for (let i = 0; i < words.length; i++) if ((words[i] & mask) === mask) return i;
  return -1;
}

/** The element's value for a message: NaN, Infinity or -Infinity. */
export function describeNonFinite(dtype: FloatDtype, raw: Uint8Array, index: number): string {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const bits = dtype === 'F32' ? view.getUint32(index * 4, true) : view.getUint16(index * 2, true);
  const mantissa = dtype === 'F32' ? bits & 0x7fffff : dtype === 'F16' ? bits & 0x3ff : bits & 0x7f;
  if (mantissa !== 0) return 'NaN';
  const negative = dtype === 'F32' ? bits >>> 31 : bits >>> 15;
  return negative ? '-Infinity' : 'Infinity';
}
