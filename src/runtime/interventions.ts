/**
 * Declarative interventions: plain JSON-serialisable specs (pyvene style)
 * turned into hook functions. A spec names a hook (with an optional "{layer}"
 * placeholder expanded over layers or a window), positions, batch rows and an
 * operation: replace (with a given vector or a cached activation), add, zero,
 * mean-ablate, scale, or seeded Gaussian noise.
 */
import { FactlensError } from '../errors';
import { ActivationCache } from './cache';
import type { HookFn, HookContext } from './forward';
import { resolveHook } from './hooks';
import type { Model } from './model';
import { rng } from './generate';
import { Tensor } from './tensor';

export type Positions = number[] | 'all' | 'last';

export interface InterventionSpec {
  /** Hook name, e.g. "layers.{layer}.mixer.ssm_out" or "layers.3.resid_post". */
  hook: string;
  /** Layers that "{layer}" expands to... */
  layers?: number[];
  /** ...or a window of layers around a centre (romba: [c − size/2, c + size/2) clipped). */
  window?: { center: number; size: number };
  positions?: Positions; // default 'all'
  rows?: number[]; // batch rows, default all
  op: 'replace' | 'add' | 'zero' | 'mean' | 'scale' | 'noise';
  /** replace/add/mean: a vector over the last axis (e.g. [D]) applied at every chosen position. */
  value?: number[];
  /** replace/add: take the vector from a cached run (row `row`, default 0; same position unless `position`). */
  source?: { cache: string; row?: number; position?: number };
  factor?: number; // scale
  std?: number; // noise standard deviation
  seed?: number; // noise seed (default 0)
}

export interface InterventionContext {
  caches?: Record<string, ActivationCache>;
}

/**
 * romba's window of `size` layers around `center` (trace_important_window:
 * range(max(0, c − size//2), min(L, c − (−size//2)))), i.e. [c − ⌊size/2⌋, c + ⌈size/2⌉)
 * clipped to the model: [ℓ−5, ℓ+5) for size 10, centred for odd sizes (Geva et al.'s 9).
 */
export function layerWindow(center: number, size: number, nLayers: number): number[] {
  if (!Number.isInteger(size) || size < 1) fail(`window size ${size} must be a positive integer`);
  if (!Number.isInteger(center) || center < 0 || center >= nLayers) fail(`window centre ${center} is out of range 0..${nLayers - 1}`);
  const out: number[] = [];
  for (let l = Math.max(0, center - Math.floor(size / 2)); l < Math.min(nLayers, center + Math.ceil(size / 2)); l++) out.push(l);
  return out;
}

/** Hook names whose position axis is 2 ([B,H,T,...]) rather than 1. */
const positionAxis = (name: string) => (/attn\.(q|k|v|scores|pattern)$/.test(name) ? 2 : 1);

export function interventionHooks(model: Model, specs: InterventionSpec[], ctx: InterventionContext = {}): Array<[string, HookFn]> {
  // One hook per hook point applies every spec aimed at it, on a single copy of the activation.
  const byName = new Map<string, InterventionSpec[]>();
  for (const spec of specs) {
    const layers = spec.window ? layerWindow(spec.window.center, spec.window.size, model.nLayers) : spec.layers;
    const names = spec.hook.includes('{layer}')
      ? (layers ?? fail(`intervention on "${spec.hook}" needs layers or window`)).map((l) => spec.hook.replace('{layer}', String(l)))
      : [spec.hook];
    for (const raw of names) {
      const name = resolveHook(raw, model.arch, model.nLayers, model.parallelResidual).name;
      if (name.endsWith('mixer.state')) fail('mixer.state cannot be intervened on with a hook; use statePatches');
      if (spec.source && !ctx.caches?.[spec.source.cache]) fail(`intervention on ${name}: no cache named "${spec.source.cache}" was given`);
      byName.set(name, [...(byName.get(name) ?? []), spec]);
    }
  }
  return [...byName].map(([name, list]): [string, HookFn] => [name, (act, hc) => applySpecs(name, list, act, hc, ctx)]);
}

function fail(msg: string): never {
  throw new FactlensError(msg);
}

function applySpecs(name: string, specs: InterventionSpec[], act: Tensor, hc: HookContext, ctx: InterventionContext): Tensor {
  const axis = positionAxis(name);
  const out = act.clone();
  const T = act.shape[axis];
  const width = act.stride(axis); // elements per position (per leading index)
  const lead = axis === 2 ? act.shape[1] : 1; // heads for attention hooks
  for (const spec of specs) {
    const rows = spec.rows ?? [...Array(act.shape[0]).keys()];
    const random = spec.op === 'noise' ? rng(spec.seed ?? 0) : null;
    const source = spec.source ? ctx.caches![spec.source.cache].get(name) : null;
    for (const b of rows) {
      if (b < 0 || b >= act.shape[0]) fail(`intervention on ${name}: row ${b} is out of range (batch has ${act.shape[0]} rows)`);
      const offset = hc.offsets[b];
      for (const t of positionsOf(spec.positions ?? 'all', hc.batch.lengths[b], T, offset, name)) {
        for (let h = 0; h < lead; h++) {
          const off = ((b * lead + h) * T + t) * width;
          applyOp(spec, out.data.subarray(off, off + width), vectorFor(spec, source, h, t + offset, width, lead, name), random);
        }
      }
    }
  }
  return out;
}

/**
 * Positions of this run to touch. Given positions are absolute; a run that
 * starts mid-sequence (offset > 0) skips those before its start.
 */
function positionsOf(p: Positions, length: number, T: number, offset: number, name: string): number[] {
  if (p === 'all') return [...Array(length).keys()];
  if (p === 'last') return [length - 1];
  for (const t of p) if (t < 0 || t - offset >= T) fail(`intervention on ${name}: position ${t} is out of range (sequence has ${T + offset} positions)`);
  return p.filter((t) => t >= offset).map((t) => t - offset);
}

/** The vector for absolute position t (a cached source is indexed by absolute position). */
function vectorFor(spec: InterventionSpec, source: Tensor | null, h: number, t: number, width: number, lead: number, name: string): Float32Array | null {
  if (source) {
    const row = spec.source!.row ?? 0;
    const pos = spec.source!.position ?? t;
    const T = source.shape[lead > 1 ? 2 : 1];
    if (row >= source.shape[0] || pos >= T) fail(`intervention on ${name}: cached source has no row ${row} / position ${pos}`);
    const off = ((row * lead + h) * T + pos) * width;
    return source.data.subarray(off, off + width);
  }
  if (spec.value) {
    if (spec.value.length !== width) fail(`intervention on ${name}: value has length ${spec.value.length}, expected ${width}`);
    return Float32Array.from(spec.value);
  }
  return null;
}

function applyOp(spec: InterventionSpec, dst: Float32Array, v: Float32Array | null, random: (() => number) | null): void {
  switch (spec.op) {
    case 'zero':
      dst.fill(0);
      return;
    case 'replace':
    case 'mean':
      if (!v) fail(`${spec.op} needs value or source`);
      dst.set(v);
      return;
    case 'add':
      if (!v) fail('add needs value or source');
      for (let i = 0; i < dst.length; i++) dst[i] += v[i];
      return;
    case 'scale':
      for (let i = 0; i < dst.length; i++) dst[i] *= spec.factor ?? fail('scale needs factor');
      return;
    case 'noise': {
      const std = spec.std ?? fail('noise needs std');
      for (let i = 0; i < dst.length; i++) dst[i] += std * gaussian(random!);
      return;
    }
    default:
      fail(`unknown intervention op "${(spec as InterventionSpec).op}"`);
  }
}

/** Standard normal by Box–Muller. */
export function gaussian(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
