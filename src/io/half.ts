/**
 * 16-bit float <-> float32 conversions, done on bit patterns so that NaN
 * payloads, infinities, signed zeros and subnormals all survive exactly.
 * Widening (F16/BF16 -> F32) is exact; narrowing rounds to nearest, ties to even.
 */

let f16Table: Uint32Array | null = null;

/** f32 bit pattern of one IEEE half bit pattern. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / nan
  if (exp !== 0) return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0; // signed zero
  // Subnormal half: mant * 2^-24 is a normal float32; shift until the implicit bit appears.
  let e = -14;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/** All 65536 half patterns widened once (256 KiB), so decoding is a table lookup. */
function halfTable(): Uint32Array {
  if (f16Table === null) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** dst[dstStart + i] = widen(src[i]); dst is the Uint32 view of the float32 output. */
export function decodeF16Into(src: Uint16Array, dst: Uint32Array, dstStart: number): void {
  const table = halfTable();
  for (let i = 0; i < src.length; i++) dst[dstStart + i] = table[src[i]];
}

/** BF16 is the top half of a float32, so widening is a shift. */
export function decodeBf16Into(src: Uint16Array, dst: Uint32Array, dstStart: number): void {
  for (let i = 0; i < src.length; i++) dst[dstStart + i] = src[i] << 16;
}

/** Widen F16 or BF16 bit patterns: dst[dstStart + i] = widen(src[i]) on the Uint32 view of the float32 output. */
export function decodeHalfInto(dtype: 'F16' | 'BF16', src: Uint16Array, dst: Uint32Array, dstStart: number): void {
  if (dtype === 'F16') decodeF16Into(src, dst, dstStart);
  else decodeBf16Into(src, dst, dstStart);
}

/** Half bit pattern nearest to the float32 bit pattern x (ties to even). */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // inf / quiet nan
  const e = exp - 127 + 15; // biased half exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // Result is a half subnormal (or zero): value = full * 2^(e-14) half-ulps.
    if (e < -10) return sign; // below half the smallest subnormal
    const full = mant | 0x800000;
    const shift = 14 - e; // 14..24
    return sign | roundShift(full, shift); // a carry into 0x400 is the smallest normal, as it should be
  }
  // Normal: drop 13 mantissa bits; a carry may ripple into the exponent (up to inf), which is correct.
  return sign | roundShift((e << 23) | mant, 13);
}

/** v >> shift rounded to nearest, ties to even (v < 2^31, 1 <= shift <= 24). */
function roundShift(v: number, shift: number): number {
  const q = v >>> shift;
  const rem = v & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

/** BF16 bit pattern nearest to the float32 bit pattern x (ties to even). */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet nan, keep sign
  // No overflow past 2^32 here: the largest non-nan pattern plus 0x8000 stays below it.
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function encodeF16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToF16Bits(bits[i]);
}

export function encodeBf16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToBf16Bits(bits[i]);
}
