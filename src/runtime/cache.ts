/**
 * Activations kept from a run, by canonical hook name. Only the names asked
 * for are kept (a full cache of a 2.8b model is gigabytes).
 *
 * A cache also reads as a plain record, TransformerLens style: `cache['blocks.3.hook_resid_post']`
 * or `cache['layers.3.mixer.gate']` (any alias) is `cache.get(name)`, so an unknown or uncached
 * name throws the same one-line error instead of giving `undefined`. Only strings that look like
 * hook names are looked up (they contain a dot, start with "hook_", or are a model-level point);
 * every other property (then, toJSON, symbols, ...) behaves as on a plain object, so tools that
 * probe objects (arquero, tslab, vitest) see nothing unusual.
 */
import { inspect } from 'util';
import { FactlensError } from '../errors';
import { Tensor } from './tensor';
import type { Batch } from './batch';
import { aliasesOf, Arch, hookDocs, resolveHook } from './hooks';
import { formatBytes } from './tensor-summary';

const MODEL_LEVEL = new Map<Arch, Set<string>>();

/** Model-level hook names and their aliases ("embed", "hook_embed", "logits", ...), once per architecture. */
function modelLevelNames(arch: Arch): Set<string> {
  let names = MODEL_LEVEL.get(arch);
  if (!names) {
    const levels = hookDocs(arch).filter((d) => !d.perLayer).map((d) => d.local);
    names = new Set([...levels, ...levels.flatMap((l) => aliasesOf(arch, l))]);
    MODEL_LEVEL.set(arch, names);
  }
  return names;
}

/** Property names that index a cache like a record. */
export type HookKey = `${string}.${string}` | `hook_${string}`;

export class ActivationCache {
  /** `cache['layers.3.resid_post']`: the activation, as `get` (throws when unknown or not cached). */
  readonly [name: HookKey]: Tensor;
  private readonly map = new Map<string, Tensor>();
  private readonly modelLevel: Set<string>;

  constructor(
    private readonly arch: Arch,
    private readonly nLayers: number,
    private readonly parallelResidual = true,
    /** The tokens of the run (rows, lengths), for position lookups by subject in interventions. */
    readonly batch: Batch | null = null,
  ) {
    this.modelLevel = modelLevelNames(arch);
    return new Proxy(this, {
      get: (target, prop, receiver) => (typeof prop === 'string' && !(prop in target) && target.isHookKey(prop) ? target.get(prop) : Reflect.get(target, prop, receiver)),
      has: (target, prop) => (typeof prop === 'string' && !(prop in target) && target.isHookKey(prop) ? target.has(prop) : Reflect.has(target, prop)),
    });
  }

  private isHookKey(prop: string): boolean {
    return prop.includes('.') || prop.startsWith('hook_') || this.modelLevel.has(prop);
  }

  set(name: string, t: Tensor): void {
    this.map.set(name, t);
  }

  /** Any accepted spelling of a hook name (romba, TransformerLens, fixture keys). */
  get(name: string): Tensor {
    const canonical = resolveHook(name, this.arch, this.nLayers, this.parallelResidual).name;
    const t = this.map.get(canonical);
    if (!t) {
      const kept = [...this.map.keys()];
      throw new FactlensError(`activation "${canonical}" was not cached; this run kept: ${kept.length ? kept.slice(0, 12).join(', ') + (kept.length > 12 ? ', …' : '') : 'nothing (pass cache: [...] to keep activations)'}`);
    }
    return t;
  }

  has(name: string): boolean {
    return this.map.has(resolveHook(name, this.arch, this.nLayers, this.parallelResidual).name);
  }

  get names(): string[] {
    return [...this.map.keys()];
  }

  /** Bytes held by the cached activations. */
  get bytes(): number {
    let n = 0;
    for (const t of this.map.values()) n += t.data.byteLength;
    return n;
  }

  /** `local` at every layer, stacked: [L,...shape]. */
  stack(local: string): Tensor {
    const parts: Tensor[] = [];
    for (let l = 0; l < this.nLayers; l++) parts.push(this.get(`layers.${l}.${local}`));
    const size = parts[0].size;
    const out = new Float32Array(size * parts.length); // [L,...]
    parts.forEach((p, l) => out.set(p.data, l * size));
    return new Tensor(out, [parts.length, ...parts[0].shape]);
  }

  /** One line, for a notebook cell's last expression and console.log. */
  toString(): string {
    const names = this.names;
    const shown = names.slice(0, 3).map((n) => `${n} [${this.map.get(n)!.shape}]`).join(', ');
    return `ActivationCache(${this.arch}, ${names.length} hook${names.length === 1 ? '' : 's'}, ${formatBytes(this.bytes)}${names.length ? `: ${shown}${names.length > 3 ? ', …' : ''}` : ''})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
