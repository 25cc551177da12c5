/**
 * Typed access to one JSON object of a config file; every error names the
 * file and the field, e.g. `x/config.json: config field "ssm_cfg.d_state" ...`.
 */
import { CheckpointError } from './errors';

export class ConfigFields {
  constructor(
    readonly file: string,
    private readonly obj: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  /** Raw value (undefined when absent). */
  raw(key: string): unknown {
    return this.obj[key];
  }

  fail(key: string, message: string): never {
    throw new CheckpointError(`${this.file}: config field "${this.prefix}${key}" ${message}`);
  }

  positiveInt(key: string, fallback?: number): number {
    const v = this.required(key, fallback);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(key, `must be a positive integer, got ${show(v)}`);
    return v;
  }

  nonNegativeInt(key: string, fallback?: number): number {
    const v = this.required(key, fallback);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(key, `must be a non-negative integer, got ${show(v)}`);
    return v;
  }

  positiveNumber(key: string, fallback?: number): number {
    const v = this.required(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(key, `must be a positive number, got ${show(v)}`);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.required(key, fallback);
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${show(v)}`);
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.required(key, fallback);
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${show(v)}`);
    return v;
  }

  /** A token id: integer, null, or (as generation configs allow) a list whose first entry counts. */
  tokenId(key: string, fallback: number | null): number | null {
    let v = this.obj[key];
    if (v === undefined || v === null) return v === null ? null : fallback;
    if (Array.isArray(v) && v.length > 0) v = v[0];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(key, `must be a token id (non-negative integer), got ${show(this.obj[key])}`);
    return v;
  }

  /** A nested object (e.g. ssm_cfg, rope_parameters); absent or null gives undefined. */
  object(key: string): ConfigFields | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, `must be an object, got ${show(v)}`);
    return new ConfigFields(this.file, v as Record<string, unknown>, `${this.prefix}${key}.`);
  }

  private required<T>(key: string, fallback: T | undefined): unknown {
    const v = this.obj[key];
    if (v !== undefined) return v;
    if (fallback === undefined) throw new CheckpointError(`${this.file}: missing required config field "${this.prefix}${key}"`);
    return fallback;
  }
}

export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array ${truncate(JSON.stringify(v))}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
