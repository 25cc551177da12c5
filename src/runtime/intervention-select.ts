/**
 * What an intervention touches inside one activation: its positions (numbers, 'all', 'last', or a
 * subject's tokens found by string in each row's own text), and within a position the attention
 * heads (`heads`) and/or channels of the last axis (`channels`, e.g. Mamba's E channels).
 */
import { FactlensError } from '../errors';
import { findSubject } from '../data/find-subject';
import type { Batch } from './batch';
import type { Model } from './model';

/** Positions by subject: the subject's tokens (all, or its first or last) in each row's text. */
export type SubjectPositions = { subject: string } | { subjectFirst: string } | { subjectLast: string };

/** Token positions: absolute indices, 'all', 'last' (each row's last real token), or by subject. */
export type Positions = number[] | 'all' | 'last' | SubjectPositions | (string & {});

const fail = (msg: string): never => {
  throw new FactlensError(msg);
};

export function isSubjectPositions(p: unknown): p is SubjectPositions {
  return typeof p === 'object' && p !== null && !Array.isArray(p);
}

/** Check a positions value before anything runs (a spec in a variable may carry any string). */
export function checkPositions(p: unknown, what: string): void {
  if (p === undefined || p === 'all' || p === 'last') return;
  if (Array.isArray(p)) {
    if (p.some((t) => !Number.isInteger(t))) fail(`${what}: positions must be integers, got [${p}]`);
    return;
  }
  if (isSubjectPositions(p)) {
    const keys = Object.keys(p);
    const ok = keys.length === 1 && ['subject', 'subjectFirst', 'subjectLast'].includes(keys[0]) && typeof (p as Record<string, unknown>)[keys[0]] === 'string';
    if (!ok) fail(`${what}: positions by subject are { subject: S }, { subjectFirst: S } or { subjectLast: S }, got ${JSON.stringify(p)}`);
    return;
  }
  fail(`${what}: positions must be number[], 'all', 'last' or { subjectLast: S }, got ${JSON.stringify(p)}`);
}

/** The subject's token positions in row b of a batch (its tokens decoded to text, then searched). */
export function subjectPositionsIn(model: Model, batch: Batch, b: number, p: SubjectPositions, what: string): number[] {
  const key = Object.keys(p)[0] as 'subject' | 'subjectFirst' | 'subjectLast';
  const subject = (p as Record<string, string>)[key];
  let found;
  try {
    found = findSubject(model, batch.rows[b], subject);
  } catch (e) {
    return fail(`${what}, row ${b}: ${(e as Error).message}`);
  }
  return key === 'subject' ? found.positions : [key === 'subjectFirst' ? found.first : found.last];
}

/** Indices into one position's vector of `width` to touch, or null for all of it. */
export function vectorSelection(heads: number[] | undefined, channels: number[] | undefined, width: number, headWidth: number | null, what: string): number[] | null {
  const span = heads && headWidth !== null ? headWidth : width; // channels count within a head when heads split the vector
  for (const c of channels ?? []) if (!Number.isInteger(c) || c < 0 || c >= span) fail(`${what}: channel ${c} is out of range 0..${span - 1}`);
  if (!heads || headWidth === null) return channels ? [...channels] : null;
  const inHead = channels ?? Array.from({ length: headWidth }, (_, i) => i);
  return heads.flatMap((h) => inHead.map((c) => h * headWidth + c));
}
