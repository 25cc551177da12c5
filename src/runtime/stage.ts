/**
 * A stage is one layer (or the embedding head) written once as a graph
 * builder with named hook points. A run that hooks some of those points cuts
 * the stage into segments at the points that may be rewritten: each segment
 * is compiled into its own session (cached), the hook sees the tensor between
 * segments, and whatever it returns flows into the next segment.
 * A stage may also contain host ops: steps computed in JavaScript or native
 * code between two segments (Mamba's selective scan, see native-scan.ts).
 * With no hooks and no host ops a stage runs as one fused session.
 */
import { FactlensError } from '../errors';
import { Dim, Graph, Value } from '../graph/ir';
import { backward } from '../graph/autodiff';
import { Compiled } from '../graph/session';
import type { Tensor } from './tensor';

/** What a builder sees: named activation inputs, weights, hook points and outputs. */
export interface StageIO {
  act(name: string, shape: Dim[]): Value;
  weight(name: string, shape: Dim[]): Value;
  hook(name: string, v: Value): Value;
  out(name: string, v: Value): void;
  /** A step computed outside onnxruntime; returns its outputs as values of the graph. */
  host(op: HostOp, inputs: Record<string, Value>): Record<string, Value>;
  /** Build-time switches. */
  readonly options: Readonly<StageOptions>;
}

/** A step of a stage computed outside onnxruntime, with its reverse-mode rule. */
export interface HostOp {
  name: string;
  /** Output names and shapes (symbolic dims as in the graph). */
  outputs: Record<string, Dim[]>;
  forward(inputs: Record<string, Tensor>): Record<string, Tensor>;
  /** Input cotangents from output cotangents (null: no gradient flows there). */
  backward(inputs: Record<string, Tensor>, cots: Record<string, Tensor | null>): Record<string, Tensor | null>;
}

export const hostKey = (op: string) => `host:${op}`;
export const hostIn = (op: string, k: string) => `hostin:${op}:${k}`;
export const hostOut = (op: string, k: string) => `hostout:${op}:${k}`;

export interface StageOptions {
  /** Produce per-position SSM states (the mixer.state hook). */
  states?: boolean;
  /** Attention reads cached keys/values of earlier positions and returns this run's (see models/kv-cache.ts). */
  kvCache?: boolean;
}

export interface StageDef {
  /** Unique key for compile caching, e.g. "mamba-layer:D256:E512:N16". */
  key: string;
  build(g: Graph, io: StageIO): void;
  /** A stage with the same hook points, host ops and outputs, cheaper to dry-build (see stageLayout). */
  layoutOf?: StageDef;
  /** Compiled once per layer (weights baked in): sessions without their own memory arena (see Compiled.create). */
  perLayer?: boolean;
}

/** Which part of a stage one compiled segment computes. */
export interface SegmentSpec {
  provided: string[]; // hook points (and host:op keys) fed in: already computed, maybe rewritten
  emitHooks: string[]; // hook points returned; a host:op key returns that op's inputs
  emitOuts: string[] | 'all'; // which stage outputs are returned (none: [])
  options: StageOptions;
}

export const actInput = (name: string) => `act:${name}`;
export const weightInput = (name: string) => `w:${name}`;
export const hookInput = (name: string) => `hook:${name}`;
export const hookOutput = (name: string) => `hook:${name}`;
export const outName = (name: string) => `out:${name}`;
export const gradOf = (input: string) => `grad:${input}`;
export const cotOf = (output: string) => `cot:${output}`;

export interface BuiltSegment {
  g: Graph;
  outputs: Map<string, Value>;
  inputs: Map<string, Value>;
  /**
   * Requested outputs that are the same value as one of the segment's inputs or
   * of another output: not computed again, the runtime reuses that tensor
   * (onnxruntime copies every output, so this saves real time).
   */
  aliases: Map<string, string>;
}

/** Build the graph of one segment; returns the graph and its graph-output values by name. */
export function buildSegment(def: StageDef, spec: SegmentSpec): BuiltSegment {
  const g = new Graph(def.key.replace(/[^A-Za-z0-9_]/g, '_'));
  const provided = new Set(spec.provided);
  const emit = new Set(spec.emitHooks);
  const outputs = new Map<string, Value>();
  const inputs = new Map<string, Value>();
  const aliases = new Map<string, string>();
  const nameOf = new Map<number, string>(); // value id -> the input or output that holds it
  const declare = (name: string, shape: Dim[]) => {
    const v = g.input(name, shape);
    inputs.set(name, v);
    nameOf.set(v.id, name);
    return v;
  };
  const emitValue = (name: string, v: Value) => {
    const same = nameOf.get(v.id);
    if (same) aliases.set(name, same);
    else {
      outputs.set(name, g.output(name, v));
      nameOf.set(v.id, name);
    }
  };
  const io: StageIO = {
    act: (name, shape) => declare(actInput(name), shape),
    weight: (name, shape) => declare(weightInput(name), shape),
    hook: (name, v) => {
      if (provided.has(name)) return declare(hookInput(name), v.shape);
      if (emit.has(name)) emitValue(hookOutput(name), v);
      return v;
    },
    out: (name, v) => {
      if (spec.emitOuts === 'all' || spec.emitOuts.includes(name)) emitValue(outName(name), v);
    },
    host: (op, ins) => {
      const key = hostKey(op.name);
      if (emit.has(key)) for (const [k, v] of Object.entries(ins)) emitValue(hostIn(op.name, k), v);
      const res: Record<string, Value> = {};
      // Not provided: a placeholder that only a segment wrongly depending on it would keep (then feeding fails loudly).
      for (const [k, shape] of Object.entries(op.outputs)) res[k] = provided.has(key) ? declare(hostOut(op.name, k), shape) : g.input(`missing:${op.name}:${k}`, shape);
      return res;
    },
    options: spec.options,
  };
  def.build(g, io);
  const has = (name: string) => outputs.has(name) || aliases.has(name);
  for (const h of spec.emitHooks) {
    const ok = h.startsWith('host:') ? [...outputs.keys(), ...aliases.keys()].some((k) => k.startsWith(`hostin:${h.slice(5)}:`)) : has(hookOutput(h));
    if (!ok) throw new FactlensError(`stage ${def.key}: unknown hook point "${h}"`);
  }
  return { g, outputs, inputs, aliases };
}

/**
 * The structure of a stage, from a dry build: its hook points and host ops
 * (host:name) in the order they are computed, and for each point and each
 * stage output the points, activation inputs (act:name) and host outputs it
 * reads directly (through plain graph values, not through another point).
 */
export interface StageLayout {
  order: string[];
  hosts: Map<string, HostOp>;
  /** Direct sources of each hook point, host op (its inputs) and stage output (out:name). */
  sources: Map<string, Set<string>>;
}

const layoutCache = new Map<string, StageLayout>();
export function stageLayout(def: StageDef, options: StageOptions = {}): StageLayout {
  if (def.layoutOf) return stageLayout(def.layoutOf, options);
  const key = `${def.key}|${JSON.stringify(options)}`;
  let layout = layoutCache.get(key);
  if (layout) return layout;
  const g = new Graph('dry');
  const order: string[] = [];
  const hosts = new Map<string, HostOp>();
  const sources = new Map<string, Set<string>>();
  const origin = new Map<number, string>(); // value id -> point or act that it is
  // Direct sources of a value: walk back through nodes to the first points, acts and host outputs.
  const srcsOf = (v: Value): Set<string> => {
    const out = new Set<string>();
    const seen = new Set<number>();
    const stack = [v];
    while (stack.length) {
      const x = stack.pop()!;
      if (seen.has(x.id)) continue;
      seen.add(x.id);
      const o = origin.get(x.id);
      if (o) {
        out.add(o);
        continue;
      }
      const n = g.nodes.find((nd) => nd.outputs.some((y) => y.id === x.id));
      for (const y of n ? [...n.inputs, ...(n.captures ?? [])] : []) if (y) stack.push(y);
    }
    return out;
  };
  def.build(g, {
    act: (n, sh) => {
      const v = g.input(n, sh);
      origin.set(v.id, actInput(n));
      return v;
    },
    weight: (n, sh) => g.input(n, sh),
    hook: (n, v) => {
      order.push(n);
      sources.set(n, srcsOf(v));
      const h = g.node('Identity', [v], {}, [v.shape])[0];
      origin.set(h.id, n);
      return h;
    },
    out: (n, v) => void sources.set(outName(n), srcsOf(v)),
    host: (op, ins) => {
      const k = hostKey(op.name);
      order.push(k);
      hosts.set(k, op);
      sources.set(k, new Set(Object.values(ins).flatMap((v) => [...srcsOf(v)])));
      const res: Record<string, Value> = {};
      for (const [name, shape] of Object.entries(op.outputs)) {
        res[name] = g.input(`${k}:${name}`, shape);
        origin.set(res[name].id, k);
      }
      return res;
    },
    options,
  });
  layout = { order, hosts, sources };
  layoutCache.set(key, layout);
  return layout;
}

/** Hook points of a stage in the order they are computed. */
export function hookOrder(def: StageDef, options: StageOptions = {}): string[] {
  return stageLayout(def, options).order.filter((n) => !n.startsWith('host:'));
}

/** A compiled segment and its aliased outputs (see BuiltSegment); null when every output is an alias. */
export interface Segment {
  compiled: Compiled | null;
  aliases: Map<string, string>;
}

const segmentCache = new Map<string, Promise<Compiled | null>>();
const aliasCache = new Map<string, Map<string, string>>();

function specKey(def: StageDef, spec: SegmentSpec): string {
  return `${def.key}|p=${[...spec.provided].sort()}|e=${spec.emitHooks}|o=${spec.emitOuts}|${JSON.stringify(spec.options)}`;
}

export async function compileSegment(def: StageDef, spec: SegmentSpec): Promise<Segment> {
  const key = specKey(def, spec);
  let c = segmentCache.get(key);
  if (!c) {
    const built = buildSegment(def, spec);
    aliasCache.set(key, built.aliases);
    c = built.outputs.size ? Compiled.create(built.g, { arena: !def.perLayer }) : Promise.resolve(null);
    segmentCache.set(key, c);
    c.catch(() => segmentCache.delete(key));
  }
  return { compiled: await c, aliases: aliasCache.get(key)! };
}

/**
 * The backward graph of a segment: inputs are the forward inputs plus a
 * cotangent for each output in `seeded`; outputs are the gradients of the
 * inputs in `wrt` (named gradOf(input)).
 */
export function compileSegmentBackward(def: StageDef, spec: SegmentSpec, seeded: string[], wrt: string[]): Promise<Compiled> {
  const key = `${specKey(def, spec)}|bwd|s=${[...seeded].sort()}|w=${[...wrt].sort()}`;
  let c = segmentCache.get(key) as Promise<Compiled> | undefined;
  if (!c) {
    const { g, outputs, inputs } = buildSegment(def, spec);
    const ys = seeded.map((s) => outputs.get(s)!);
    const seeds = ys.map((y, i) => g.input(cotOf(seeded[i]), y.shape));
    const wrtValues = wrt.map((w) => {
      const v = inputs.get(w);
      if (!v) throw new FactlensError(`stage ${def.key}: no input "${w}" to differentiate`);
      return v;
    });
    const grads = backward(g, ys, seeds, wrtValues);
    g.outputs.length = 0; // keep only the gradients as outputs
    wrt.forEach((w, i) => {
      const gv = grads[i] ?? g.mul(wrtValues[i], g.scalar(0)); // input with no influence: zero gradient
      g.output(gradOf(w), gv);
    });
    c = Compiled.create(g);
    segmentCache.set(key, c);
    c.catch(() => segmentCache.delete(key));
  }
  return c;
}

/** Keys of the compiled (or compiling) segments whose key matches: for tests that count sessions. */
export function compiledKeys(match: (key: string) => boolean): string[] {
  return [...segmentCache.keys()].filter(match);
}

/** Drop every compiled session (frees memory; used by tests and long sessions). */
export async function clearCompiled(): Promise<void> {
  await releaseCompiled(() => true);
}

/** Drop the compiled sessions whose cache key matches. */
export async function releaseCompiled(match: (key: string) => boolean): Promise<void> {
  // Unlist them all before the first await, so that no run started meanwhile picks one up to be released under it.
  const drop = [...segmentCache.entries()].filter(([key]) => match(key));
  for (const [key] of drop) {
    segmentCache.delete(key);
    aliasCache.delete(key);
  }
  for (const [, c] of drop) await (await c.catch(() => null))?.release();
}
