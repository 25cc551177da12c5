/**
 * Where a span of characters (a subject) lies in a tokenized prompt: the one subject finder that
 * every method uses (ROME's keys, causal tracing's corrupted span, LRE's subject token, information
 * flow's source sets).
 *
 * Token k covers the characters decode(ids[0..k)) .. decode(ids[0..k]) of the text, so the span is
 * right however BPE merges the subject with its neighbours (" Space" with its leading space counts
 * as a subject token). A token that ends inside a multi-byte character decodes with a trailing
 * U+FFFD: it ends where that character starts, and belongs to the span when that character does.
 */
import { FactlensError } from '../errors';
import type { Model } from '../runtime/model';

export interface TokenSpan {
  /** The tokenized text. */
  ids: number[];
  /** Indices of the first and last tokens that overlap the characters (inclusive). */
  first: number;
  last: number;
  /** True when the span's last character ends a token (ROME's prefix/subject/suffix split assumes it). */
  exact: boolean;
}

/** The tokens of `text` (tokenized as `ids`) that overlap its characters [start, end). */
export function tokenSpan(model: Model, text: string, start: number, end: number, ids: number[] = model.encode(text)): TokenSpan {
  if (!(start >= 0 && end > start && end <= text.length)) throw new FactlensError(`characters [${start}, ${end}) are not a non-empty span of ${JSON.stringify(text)}`);
  let first = -1;
  let last = -1;
  let prev = 0; // end of token k−1, in characters
  for (let k = 0; k < ids.length && prev < end; k++) {
    const raw = model.decode(ids.slice(0, k + 1));
    const decoded = raw.replace(/\uFFFD+$/, '');
    if (!text.startsWith(decoded)) return spanByReencoding(model, text, start, end, ids);
    const upto = Math.max(prev, decoded.length);
    const partial = decoded.length < raw.length; // holds the first bytes of the character at `upto`
    if ((upto > start && prev < end) || (partial && upto >= start && upto < end)) {
      if (first < 0) first = k;
      last = k;
    }
    if (upto >= end) return { ids, first, last, exact: upto === end };
    prev = upto;
  }
  throw new FactlensError(`cannot locate the tokens of ${JSON.stringify(text.slice(start, end))} in ${JSON.stringify(text)}`);
}

/** The first occurrence of `subject` in `text` at or after character `from`, as a token span. */
export function subjectSpan(model: Model, text: string, subject: string, opts: { from?: number; ids?: number[]; occurrence?: 'first' | 'last' } = {}): TokenSpan {
  if (!subject) throw new FactlensError('the subject is empty');
  const at = opts.occurrence === 'last' ? text.lastIndexOf(subject) : text.indexOf(subject, opts.from ?? 0);
  if (at < 0) throw new FactlensError(`the subject ${JSON.stringify(subject)} does not occur in the prompt ${JSON.stringify(text)}`);
  return tokenSpan(model, text, at, at + subject.length, opts.ids);
}

/**
 * For tokenizers whose decode does not give back the text (normalisation): count the tokens of the
 * text up to the span's start and end instead.
 */
function spanByReencoding(model: Model, text: string, start: number, end: number, ids: number[]): TokenSpan {
  const upto = model.encode(text.slice(0, end)).length;
  const before = model.encode(text.slice(0, start).replace(/\s+$/, '')).length;
  const last = Math.min(upto, ids.length) - 1;
  if (last < 0) throw new FactlensError(`cannot locate the tokens of ${JSON.stringify(text.slice(start, end))} in ${JSON.stringify(text)}`);
  return { ids, first: Math.min(before, last), last, exact: false };
}
