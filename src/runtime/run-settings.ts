/**
 * The settings a checkpointed run records in its log's header (see run-log.ts): whatever decides
 * its results, as plain JSON, so that resuming with anything different is refused. Callbacks are
 * left out (they observe, they do not decide); tables and long lists are reduced to a SHA-256 of
 * their rows. The model is recorded by name and config, not by its weights (hashing an 11 GB
 * checkpoint per run, or reading a packed model's weights, costs more than it guards).
 */
import crypto from 'crypto';
import type { Model } from './model';
import type { Settings } from './run-log';

/** Settings of a run of `model` with options `opts` over `data` (the units' inputs). */
export function runSettings(model: Model, opts: object, data: unknown): Settings {
  const options: Settings = {};
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'checkpoint' || typeof value === 'function' || value === undefined) continue;
    options[key] = plain(value);
  }
  return { model: model.name, config: model.config, options, data: digest(plain(data)) };
}

/** A unit key that stays readable: its index and a label (a subject, a case id). */
export function unitKey(index: number, label: unknown): string {
  return `${index}: ${String(label)}`;
}

/**
 * A JSON-able stand-in: arquero tables become a digest of their rows, typed arrays and tensors a
 * digest of their values (never a copy: a [d,d] matrix would make the header megabytes), other class
 * instances (a SecondMoment, a base model) their class name.
 */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v)) return digest(Array.from(v as unknown as ArrayLike<number>));
  if (Array.isArray(v)) return v.map(plain);
  const o = v as Record<string, unknown>;
  if (typeof o.objects === 'function') return { rows: digest((o.objects as () => unknown[])()) };
  if (ArrayBuffer.isView(o.data) && Array.isArray(o.shape)) return { shape: o.shape, data: plain(o.data) };
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return { instance: (v as object).constructor?.name ?? 'object' };
  return Object.fromEntries(Object.entries(o).filter(([, x]) => typeof x !== 'function').map(([k, x]) => [k, plain(x)]));
}

function digest(v: unknown): string {
  return `sha256:${crypto.createHash('sha256').update(JSON.stringify(v) ?? 'undefined').digest('hex')}`;
}
