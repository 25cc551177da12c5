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

/** A JSON-able stand-in: arquero tables become their rows; typed arrays, arrays. */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (typeof (v as { objects?: unknown }).objects === 'function') return { rows: digest((v as { objects: () => unknown[] }).objects()) };
  if (Array.isArray(v)) return v.map(plain);
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x !== 'function').map(([k, x]) => [k, plain(x)]));
}

function digest(v: unknown): string {
  return `sha256:${crypto.createHash('sha256').update(JSON.stringify(v) ?? 'undefined').digest('hex')}`;
}
