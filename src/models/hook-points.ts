/**
 * How a model declares its hook points: once, in the file whose graph creates them (mamba.ts,
 * mamba2.ts, transformer.ts), with shape, meaning and the names other libraries use. The hook vocabulary
 * (runtime/hooks.ts: validation, aliases, suggestions), docs/hooks.md and the CLI's `hooks` listing are
 * all derived from these declarations, and a completeness test checks them against the graphs.
 */
import type { Value } from '../graph/ir';
import type { StageIO } from '../runtime/stage';

export interface HookPoint {
  /** 'layer': `layers.{i}.<name>` in every layer; 'model': one model-level point. */
  scope: 'layer' | 'model';
  /** In shape letters (B batch, T tokens, P read-out positions, D, E, N, H, Dh, F, V). */
  shape: string;
  meaning: string;
  /** Other spellings that resolve to this point: romba, TransformerLens / MambaLens, HF module paths, fixture keys. */
  aliases?: readonly string[];
  /** Spellings that still resolve here but warn once: alias → why it is deprecated and what to use. */
  deprecated?: Readonly<Record<string, string>>;
  /** Points that exist only in some configurations. */
  only?: 'sequential-residual';
}

/** A model's declarations, canonical name → point, in the order of the docs table. */
export type HookPoints<K extends string = string> = Readonly<Record<K, HookPoint>>;

/**
 * `io.hook` restricted to the declared names, so that a graph cannot create an undeclared point
 * (checked by the compiler; the completeness test checks the converse).
 */
export function declaredHook<K extends string>(io: StageIO, _points: HookPoints<K>): (name: K, v: Value) => Value {
  return (name, v) => io.hook(name, v);
}
