/**
 * A stage is one layer (or the embedding head) written once as a graph
 * builder with named hook points. A run that hooks some of those points cuts
 * the stage into segments at the points that may be rewritten: each segment
 * is compiled into its own session (cached), the hook sees the tensor between
 * segments, and whatever it returns flows into the next segment.
 * With no hooks a stage runs as one fused session.
 */
import { FactlensError } from '../errors';
import { Dim, Graph, Value } from '../graph/ir';
import { backward } from '../graph/autodiff';
import { Compiled } from '../graph/session';

/** What a builder sees: named activation inputs, weights, hook points and outputs. */
export interface StageIO {
  act(name: string, shape: Dim[]): Value;
  weight(name: string, shape: Dim[]): Value;
  hook(name: string, v: Value): Value;
  out(name: string, v: Value): void;
  /** Build-time switches. */
  readonly options: Readonly<StageOptions>;
}

export interface StageOptions {
  /** Produce per-position SSM states (the mixer.state hook). */
  states?: boolean;
}

export interface StageDef {
  /** Unique key for compile caching, e.g. "mamba-layer:D256:E512:N16". */
  key: string;
  build(g: Graph, io: StageIO): void;
}

/** Which part of a stage one compiled segment computes. */
export interface SegmentSpec {
  provided: string[]; // hook points fed in (already computed, maybe rewritten)
  emitHooks: string[]; // hook points returned
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

/** Build the graph of one segment; returns the graph and its graph-output values by name. */
export function buildSegment(def: StageDef, spec: SegmentSpec): { g: Graph; outputs: Map<string, Value>; inputs: Map<string, Value> } {
  const g = new Graph(def.key.replace(/[^A-Za-z0-9_]/g, '_'));
  const provided = new Set(spec.provided);
  const emit = new Set(spec.emitHooks);
  const outputs = new Map<string, Value>();
  const inputs = new Map<string, Value>();
  const declare = (name: string, shape: Dim[]) => {
    const v = g.input(name, shape);
    inputs.set(name, v);
    return v;
  };
  const io: StageIO = {
    act: (name, shape) => declare(actInput(name), shape),
    weight: (name, shape) => declare(weightInput(name), shape),
    hook: (name, v) => {
      if (provided.has(name)) return declare(hookInput(name), v.shape);
      if (emit.has(name)) outputs.set(hookOutput(name), g.output(hookOutput(name), v));
      return v;
    },
    out: (name, v) => {
      if (spec.emitOuts === 'all' || spec.emitOuts.includes(name)) outputs.set(outName(name), g.output(outName(name), v));
    },
    options: spec.options,
  };
  def.build(g, io);
  for (const h of spec.emitHooks) if (!outputs.has(hookOutput(h))) throw new FactlensError(`stage ${def.key}: unknown hook point "${h}"`);
  return { g, outputs, inputs };
}

/** Hook points of a stage in the order they are computed (a dry build). */
const orderCache = new Map<string, string[]>();
export function hookOrder(def: StageDef, options: StageOptions = {}): string[] {
  const key = `${def.key}|${JSON.stringify(options)}`;
  let order = orderCache.get(key);
  if (!order) {
    const names: string[] = [];
    const g = new Graph('dry');
    def.build(g, {
      act: (n, s) => g.input(n, s),
      weight: (n, s) => g.input(n, s),
      hook: (n, v) => (names.push(n), v),
      out: () => undefined,
      options,
    });
    order = names;
    orderCache.set(key, order);
  }
  return order;
}

const segmentCache = new Map<string, Promise<Compiled>>();

function specKey(def: StageDef, spec: SegmentSpec): string {
  return `${def.key}|p=${[...spec.provided].sort()}|e=${spec.emitHooks}|o=${spec.emitOuts}|${JSON.stringify(spec.options)}`;
}

export function compileSegment(def: StageDef, spec: SegmentSpec): Promise<Compiled> {
  const key = specKey(def, spec);
  let c = segmentCache.get(key);
  if (!c) {
    c = Compiled.create(buildSegment(def, spec).g);
    segmentCache.set(key, c);
    c.catch(() => segmentCache.delete(key));
  }
  return c;
}

/**
 * The backward graph of a segment: inputs are the forward inputs plus a
 * cotangent for each output in `seeded`; outputs are the gradients of the
 * inputs in `wrt` (named gradOf(input)).
 */
export function compileSegmentBackward(def: StageDef, spec: SegmentSpec, seeded: string[], wrt: string[]): Promise<Compiled> {
  const key = `${specKey(def, spec)}|bwd|s=${[...seeded].sort()}|w=${[...wrt].sort()}`;
  let c = segmentCache.get(key);
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

/** Drop every compiled session (frees memory; used by tests and long sessions). */
export async function clearCompiled(): Promise<void> {
  const all = [...segmentCache.values()];
  segmentCache.clear();
  for (const c of all) (await c.catch(() => null))?.release();
}
