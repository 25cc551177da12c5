/**
 * safetensors dtype tags. Only F32/F16/BF16 hold model weights we compute
 * with; the rest are recognised so that a file carrying, say, an I64 buffer
 * parses, and reading it as float fails with a precise message instead.
 */
export type FloatDtype = 'F32' | 'F16' | 'BF16';
export type Dtype = FloatDtype | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const ITEM_SIZE: Record<Dtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export const KNOWN_DTYPES = Object.keys(ITEM_SIZE) as Dtype[];

export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ITEM_SIZE, s);
}

export function isFloatDtype(d: Dtype): d is FloatDtype {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

export function itemSize(d: Dtype): number {
  return ITEM_SIZE[d];
}
