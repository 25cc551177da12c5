/**
 * The hook vocabulary, derived from the hook points each model declares where its graph creates them
 * (MAMBA_HOOKS in models/mamba.ts, TRANSFORMER_HOOKS and NEOX_HOOKS in models/transformer.ts): canonical names, shapes and
 * meaning, aliases from romba, TransformerLens / MambaLens, Hugging Face module paths and the parity
 * fixtures, deprecated aliases (a one-time warning), and suggestions for unknown names.
 */
import { FactlensError } from '../errors';
import type { HookPoints } from '../models/hook-points';
import { MAMBA_HOOKS } from '../models/mamba';
import { MAMBA2_HOOKS } from '../models/mamba2';
import { NEOX_HOOKS, TRANSFORMER_HOOKS, UNGATED_TRANSFORMER_HOOKS } from '../models/transformer';
import type { ModelConfig } from '../io/config-types';

export type Arch = ModelConfig['arch'];

/** Every architecture, in the order of the docs. */
export const ARCHS: readonly Arch[] = ['mamba', 'gpt_neox', 'mamba2', 'gpt2', 'llama', 'mistral', 'qwen2', 'qwen3'];

export interface HookDoc {
  local: string; // name inside layer i (or a model-level name)
  shape: string; // in shape letters
  meaning: string;
  perLayer: boolean;
}

const DECLARED: Record<Arch, HookPoints> = {
  mamba: MAMBA_HOOKS,
  gpt_neox: NEOX_HOOKS,
  mamba2: MAMBA2_HOOKS,
  gpt2: UNGATED_TRANSFORMER_HOOKS,
  llama: TRANSFORMER_HOOKS,
  mistral: TRANSFORMER_HOOKS,
  qwen2: TRANSFORMER_HOOKS,
  qwen3: TRANSFORMER_HOOKS,
};

export function hookDocs(arch: Arch, parallelResidual = true): HookDoc[] {
  return Object.entries(DECLARED[arch])
    .filter(([, p]) => !(parallelResidual && p.only === 'sequential-residual'))
    .map(([local, p]) => ({ local, shape: p.shape, meaning: p.meaning, perLayer: p.scope === 'layer' }));
}

/** Alias → canonical local name, for per-layer or model-level points. */
function aliasTable(arch: Arch, scope: 'layer' | 'model'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [local, p] of Object.entries(DECLARED[arch])) {
    if (p.scope !== scope) continue;
    for (const a of [...(p.aliases ?? []), ...Object.keys(p.deprecated ?? {})]) out[a] = local;
  }
  return out;
}

const perArch = (scope: 'layer' | 'model') => Object.fromEntries(ARCHS.map((a) => [a, aliasTable(a, scope)])) as Record<Arch, Record<string, string>>;
const LAYER_ALIASES = perArch('layer');
const GLOBAL_ALIASES = perArch('model');

/** Every accepted (not deprecated) alias spelling of a canonical local hook name. */
export function aliasesOf(arch: Arch, local: string): string[] {
  return (DECLARED[arch][local]?.aliases ?? []).filter((a) => a !== '');
}

/** The deprecated aliases of a canonical local hook name, with why and what to use instead. */
export function deprecatedAliasesOf(arch: Arch, local: string): Record<string, string> {
  return { ...(DECLARED[arch][local]?.deprecated ?? {}) };
}

const warned = new Set<string>();
function warnDeprecated(arch: Arch, alias: string, local: string): void {
  const point = Object.prototype.hasOwnProperty.call(DECLARED[arch], local) ? DECLARED[arch][local] : undefined;
  const why = point?.deprecated && Object.prototype.hasOwnProperty.call(point.deprecated, alias) ? point.deprecated[alias] : undefined;
  if (why === undefined || warned.has(`${arch}:${alias}`)) return;
  warned.add(`${arch}:${alias}`);
  console.warn(`factlens: hook alias "${alias}" is deprecated (${why}); it resolves to ${local}`);
}

export interface HookName {
  name: string; // canonical global name
  layer: number | null;
  local: string;
}

/** Resolve any accepted spelling to the canonical hook name, or throw with suggestions. */
export function resolveHook(raw: string, arch: Arch, nLayers: number, parallelResidual = true): HookName {
  const docs = hookDocs(arch, parallelResidual);
  const locals = new Set(docs.map((d) => d.local));
  const stripped = raw.replace(/^(backbone|gpt_neox|model|transformer)\./, '');
  const m = /^(?:layers|blocks|h)\.(\d+)(?:\.(.*))?$/.exec(stripped);
  if (m) {
    const layer = Number(m[1]);
    let local = (m[2] ?? '').replace(/^mixer\.(?=(ssm_|mlp_|before_|after_))/, '');
    if (!(locals.has(local) && docs.find((d) => d.local === local)!.perLayer) && Object.prototype.hasOwnProperty.call(LAYER_ALIASES[arch], local)) {
      warnDeprecated(arch, local, LAYER_ALIASES[arch][local]);
      local = LAYER_ALIASES[arch][local];
    }
    if (locals.has(local) && docs.find((d) => d.local === local)!.perLayer) {
      if (layer < 0 || layer >= nLayers) throw new FactlensError(`hook "${raw}": layer ${layer} is out of range (model has ${nLayers} layers, 0..${nLayers - 1})`);
      return { name: `layers.${layer}.${local}`, layer, local };
    }
  } else {
    const local = Object.prototype.hasOwnProperty.call(GLOBAL_ALIASES[arch], stripped) ? GLOBAL_ALIASES[arch][stripped] : stripped;
    warnDeprecated(arch, stripped, local);
    if (locals.has(local) && !docs.find((d) => d.local === local)!.perLayer) return { name: local, layer: null, local };
  }
  throw new FactlensError(`unknown hook "${raw}" for ${arch}. Did you mean: ${suggest(raw, allHookNames(arch, nLayers, parallelResidual)).join(', ')}?`);
}

export function allHookNames(arch: Arch, nLayers: number, parallelResidual = true): string[] {
  const out: string[] = [];
  const docs = hookDocs(arch, parallelResidual);
  out.push('embed');
  for (let l = 0; l < nLayers; l++) for (const d of docs) if (d.perLayer) out.push(`layers.${l}.${d.local}`);
  for (const d of docs) if (!d.perLayer && d.local !== 'embed') out.push(d.local);
  return out;
}

function suggest(raw: string, names: string[]): string[] {
  return names
    .map((n) => ({ n, d: editDistance(raw.toLowerCase(), n.toLowerCase()) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((x) => `"${x.n}"`);
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}
