/**
 * Prompts for causal tracing: token ids with the subject's token span, and the alignment of a clean
 * and a corrupted prompt whose subjects tokenize to different lengths.
 *
 * Span convention (ROME's find_token_range): [b, e) = the tokens that overlap the subject's
 * characters; e is exclusive, so e − 1 is the subject's last token.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { tokenSpan } from '../../data/subject-span';

export interface TracePrompt {
  text: string;
  subject: string;
  ids: number[];
  /** Subject token span [b, e). */
  subjectRange: [number, number];
}

/** Token span [b, e) of the characters [charStart, charEnd) of `text`, tokenized as `ids`. */
export function tokenRange(model: Model, text: string, ids: number[], charStart: number, charEnd: number): [number, number] {
  const span = tokenSpan(model, text, charStart, charEnd, ids);
  return [span.first, span.last + 1];
}

/**
 * A prompt from a template with "{}" (or a full prompt containing the subject), tokenized, with the
 * subject's token span. `prefix` is prepended to the text (e.g. "<|endoftext|> " as romba's demos).
 */
export function tracePrompt(model: Model, templateOrPrompt: string, subject: string, prefix = ''): TracePrompt {
  const i = templateOrPrompt.indexOf('{}');
  let text: string;
  let at: number;
  if (i >= 0) {
    text = prefix + templateOrPrompt.slice(0, i) + subject + templateOrPrompt.slice(i + 2);
    at = prefix.length + i;
  } else {
    const j = templateOrPrompt.indexOf(subject);
    if (j < 0) throw new FactlensError(`prompt ${JSON.stringify(templateOrPrompt)} has neither "{}" nor the subject ${JSON.stringify(subject)}`);
    text = prefix + templateOrPrompt;
    at = prefix.length + j;
  }
  const ids = model.encode(text);
  return { text, subject, ids, subjectRange: tokenRange(model, text, ids, at, at + subject.length) };
}

export interface AlignedPair {
  /** Both rows, equally long: the shorter one has `eosId` tokens prepended. */
  clean: number[];
  corrupt: number[];
  /** EOS tokens prepended to each row. */
  padClean: number;
  padCorrupt: number;
  /** Subject spans in the aligned rows. */
  cleanRange: [number, number];
  corruptRange: [number, number];
  /** The corrupted span the paper uses: [min(b, b′), e) (e is the same in both rows). */
  span: [number, number];
}

/**
 * Aligns a clean and a corrupted prompt that differ only in the subject so that the tokens after the
 * subject line up: the shorter row gets EOS tokens prepended (the paper left-pads with EOS, which
 * Mamba really processes; we do it explicitly so that no padding at all is needed). Throws if the
 * suffix after the subject does not tokenize identically in both prompts.
 */
export function alignPair(clean: TracePrompt, corrupt: TracePrompt, eosId: number): AlignedPair {
  const sufC = clean.ids.slice(clean.subjectRange[1]);
  const sufA = corrupt.ids.slice(corrupt.subjectRange[1]);
  if (sufC.length !== sufA.length || sufC.some((id, k) => id !== sufA[k])) {
    throw new FactlensError(`the tokens after the subject differ between ${JSON.stringify(clean.text)} and ${JSON.stringify(corrupt.text)}: cannot align them`);
  }
  const T = Math.max(clean.ids.length, corrupt.ids.length);
  const padClean = T - clean.ids.length;
  const padCorrupt = T - corrupt.ids.length;
  const pad = (ids: number[], n: number) => [...new Array<number>(n).fill(eosId), ...ids];
  const cleanRange: [number, number] = [clean.subjectRange[0] + padClean, clean.subjectRange[1] + padClean];
  const corruptRange: [number, number] = [corrupt.subjectRange[0] + padCorrupt, corrupt.subjectRange[1] + padCorrupt];
  return {
    clean: pad(clean.ids, padClean),
    corrupt: pad(corrupt.ids, padCorrupt),
    padClean,
    padCorrupt,
    cleanRange,
    corruptRange,
    span: [Math.min(cleanRange[0], corruptRange[0]), cleanRange[1]],
  };
}

/** The model's end-of-text id (used for alignment padding). */
export function eosId(model: Model): number {
  const id = model.tokenizer?.eosId ?? model.config.eosTokenId;
  if (id === null || id === undefined) throw new FactlensError(`${model.name} has no end-of-text token id`);
  return id;
}
