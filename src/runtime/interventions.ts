/**
 * Declarative interventions: plain JSON-serialisable specs (pyvene style)
 * turned into hook functions. A spec names a hook (with an optional "{layer}"
 * placeholder expanded over layers or a window), positions (indices, or a
 * subject's tokens by string), batch rows, attention heads or channels, and an
 * operation: replace (with a given vector or a cached activation), add, zero,
 * mean-ablate, scale, or seeded Gaussian noise.
 *
 * The string fields also accept plain `string` (checked when the hooks are
 * built), so a spec built in a variable type-checks without `as const`.
 */
import { FactlensError } from '../errors';
import { ActivationCache } from './cache';
import type { HookFn, HookContext } from './forward';
import { resolveHook } from './hooks';
import type { Model } from './model';
import { rng } from './generate';
import { Tensor } from './tensor';
import { checkPositions, isSubjectPositions, Positions, SubjectPositions, subjectPositionsIn, vectorSelection } from './intervention-select';

export type { Positions, SubjectPositions } from './intervention-select';

export const INTERVENTION_OPS = ['replace', 'add', 'zero', 'mean', 'scale', 'noise'] as const;
export type InterventionOp = (typeof INTERVENTION_OPS)[number];

export interface InterventionSpec {
  /** Hook name, e.g. "layers.{layer}.mixer.ssm_out" or "layers.3.resid_post". */
  hook: string;
  /** Layers that "{layer}" expands to... */
  layers?: number[];
  /** ...or a window of layers around a centre (romba: [c − size/2, c + size/2) clipped). */
  window?: { center: number; size: number };
  positions?: Positions; // default 'all'
  rows?: number[]; // batch rows, default all
  /** Attention heads only (attn.q/k/v/scores/pattern [B,H,T,...], or attn.z's per-head slices). */
  heads?: number[];
  /** Channels of the last axis only (e.g. Mamba's E channels of mixer.*; within each head with `heads` on attn.z). */
  channels?: number[];
  op: InterventionOp | (string & {});
  /** replace/add/mean: a vector over the last axis (e.g. [D], or one value per selected channel) applied at every chosen position. */
  value?: number[];
  /**
   * replace/add: take the vector from a cached run (row `row`, default 0; same position unless
   * `position`, which may name the source prompt's subject token: { subjectLast: 'Italy' }).
   */
  source?: { cache: string; row?: number; position?: number | Exclude<SubjectPositions, { subject: string }> };
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

/** Check the fields a spec built in a variable may carry as any string or number, before anything runs. */
function checkSpec(model: Model, spec: InterventionSpec, name: string): void {
  const what = `intervention on ${name}`;
  if (!(INTERVENTION_OPS as readonly string[]).includes(spec.op)) fail(`${what}: unknown op "${spec.op}" (one of ${INTERVENTION_OPS.join(', ')})`);
  checkPositions(spec.positions, what);
  if (spec.source?.position !== undefined && typeof spec.source.position !== 'number') checkPositions(spec.source.position, `${what}, source`);
  if (spec.heads) {
    if (!/attn\.(q|k|v|scores|pattern|z)$/.test(name)) fail(`${what}: heads apply to attention hooks (attn.q, attn.k, attn.v, attn.scores, attn.pattern, attn.z), not this one`);
    const H = model.neoxConfig.nHead;
    for (const h of spec.heads) if (!Number.isInteger(h) || h < 0 || h >= H) fail(`${what}: head ${h} is out of range 0..${H - 1}`);
  }
}

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
      checkSpec(model, spec, name);
      byName.set(name, [...(byName.get(name) ?? []), spec]);
    }
  }
  return [...byName].map(([name, list]): [string, HookFn] => [name, (act, hc) => applySpecs(model, name, list, act, hc, ctx)]);
}

function fail(msg: string): never {
  throw new FactlensError(msg);
}

function applySpecs(model: Model, name: string, specs: InterventionSpec[], act: Tensor, hc: HookContext, ctx: InterventionContext): Tensor {
  const axis = positionAxis(name);
  const out = act.clone();
  const T = act.shape[axis];
  const width = act.stride(axis); // elements per position (per leading index)
  const lead = axis === 2 ? act.shape[1] : 1; // heads for attention hooks
  const headWidth = name.endsWith('attn.z') ? width / model.neoxConfig.nHead : null; // attn.z concatenates the heads
  for (const spec of specs) {
    const what = `intervention on ${name}`;
    const rows = spec.rows ?? [...Array(act.shape[0]).keys()];
    const random = spec.op === 'noise' ? rng(spec.seed ?? 0) : null;
    const source = spec.source ? sourceOf(model, ctx.caches![spec.source.cache], name, spec.source) : null;
    const leads = axis === 2 && spec.heads ? spec.heads : [...Array(lead).keys()];
    const select = vectorSelection(axis === 2 ? undefined : spec.heads, spec.channels, width, headWidth, what);
    for (const b of rows) {
      if (b < 0 || b >= act.shape[0]) fail(`${what}: row ${b} is out of range (batch has ${act.shape[0]} rows)`);
      const offset = hc.offsets[b];
      for (const t of positionsOf(model, spec.positions ?? 'all', hc, b, T, name)) {
        for (const h of leads) {
          const off = ((b * lead + h) * T + t) * width;
          applyOp(spec, out.data.subarray(off, off + width), vectorFor(spec, source, h, t + offset, width, lead, select, name), random, select);
        }
      }
    }
  }
  return out;
}

/** A cached source activation and the absolute position to read (null: the patched position). */
function sourceOf(model: Model, cache: ActivationCache, name: string, src: NonNullable<InterventionSpec['source']>): { t: Tensor; position: number | null } {
  const row = src.row ?? 0;
  const p = src.position;
  if (!isSubjectPositions(p)) return { t: cache.get(name), position: p ?? null };
  if (!cache.batch) fail(`intervention on ${name}: the source cache "${src.cache}" does not know its tokens, so a subject position cannot be found in it`);
  return { t: cache.get(name), position: subjectPositionsIn(model, cache.batch, row, p, `intervention on ${name}, source "${src.cache}"`)[0] };
}

/**
 * Positions of this run to touch. Given positions are absolute; a run that
 * starts mid-sequence (offset > 0) skips those before its start.
 */
function positionsOf(model: Model, p: Positions, hc: HookContext, b: number, T: number, name: string): number[] {
  const length = hc.batch.lengths[b];
  const offset = hc.offsets[b];
  if (p === 'all') return [...Array(length).keys()];
  if (p === 'last') return [length - 1];
  if (isSubjectPositions(p)) {
    if (offset) fail(`intervention on ${name}: positions by subject need the whole prompt, but this run resumes at position ${offset}`);
    return subjectPositionsIn(model, hc.batch, b, p, `intervention on ${name}`);
  }
  const list = p as number[];
  for (const t of list) if (t < 0 || t - offset >= T) fail(`intervention on ${name}: position ${t} is out of range (sequence has ${T + offset} positions)`);
  return list.filter((t) => t >= offset).map((t) => t - offset);
}

/** The vector for absolute position t (a cached source is indexed by absolute position). */
function vectorFor(spec: InterventionSpec, source: { t: Tensor; position: number | null } | null, h: number, t: number, width: number, lead: number, select: number[] | null, name: string): Float32Array | null {
  if (source) {
    const row = spec.source!.row ?? 0;
    const pos = source.position ?? t;
    const T = source.t.shape[lead > 1 ? 2 : 1];
    if (row >= source.t.shape[0] || pos >= T) fail(`intervention on ${name}: cached source has no row ${row} / position ${pos}`);
    const off = ((row * lead + h) * T + pos) * width;
    return source.t.data.subarray(off, off + width);
  }
  if (spec.value) {
    // One value per selected channel is spread out to the full vector.
    if (select && spec.value.length === select.length && select.length !== width) {
      const full = new Float32Array(width); // [width]
      select.forEach((c, i) => (full[c] = spec.value![i]));
      return full;
    }
    if (spec.value.length !== width) fail(`intervention on ${name}: value has length ${spec.value.length}, expected ${width}${select ? ` (or ${select.length}, one per selected channel)` : ''}`);
    return Float32Array.from(spec.value);
  }
  return null;
}

function applyOp(spec: InterventionSpec, dst: Float32Array, v: Float32Array | null, random: (() => number) | null, select: number[] | null): void {
  const each = (f: (i: number) => void) => {
    if (select) for (const i of select) f(i);
    else for (let i = 0; i < dst.length; i++) f(i);
  };
  switch (spec.op) {
    case 'zero':
      each((i) => (dst[i] = 0));
      return;
    case 'replace':
    case 'mean': {
      const src = v ?? fail(`${spec.op} needs value or source`);
      each((i) => (dst[i] = src[i]));
      return;
    }
    case 'add': {
      const src = v ?? fail('add needs value or source');
      each((i) => (dst[i] += src[i]));
      return;
    }
    case 'scale': {
      const factor = spec.factor ?? fail('scale needs factor');
      each((i) => (dst[i] *= factor));
      return;
    }
    case 'noise': {
      const std = spec.std ?? fail('noise needs std');
      each((i) => (dst[i] += std * gaussian(random!)));
      return;
    }
    default:
      fail(`unknown intervention op "${spec.op}"`);
  }
}

/** Standard normal by Box–Muller. */
export function gaussian(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
