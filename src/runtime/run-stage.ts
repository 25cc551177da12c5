/**
 * Run one stage with hooks: cut it at rewritable hook points, run each
 * segment, let the hooks see (and replace) the tensors in between, and
 * record every segment on the tape when gradients are wanted.
 */
import { FactlensError } from '../errors';
import { Tensor } from './tensor';
import {
  actInput, compileSegment, hookInput, hookOrder, hookOutput, outName, SegmentSpec, StageDef, StageOptions, weightInput,
} from './stage';
import type { Tape } from './tape';

/** A hook on one point of one stage: may return a replacement (same shape). */
export type StageHook = (act: Tensor) => Tensor | void | Promise<Tensor | void>;

export interface StagePlan {
  reads: Set<string>; // hook points to return (after any rewrite)
  writes: Map<string, StageHook[]>; // hook points that may be rewritten, in call order
  options: StageOptions;
  /** Stage outputs to compute (default all): leaving out a layer's final recurrent state spares recomputing the scan after a late hook. */
  outs?: string[];
}

export interface StageResult {
  outs: Record<string, Tensor>;
  reads: Map<string, Tensor>;
}

export const emptyPlan = (): StagePlan => ({ reads: new Set(), writes: new Map(), options: {} });

export async function runStage(
  def: StageDef,
  acts: Record<string, Tensor>,
  weights: (local: string) => Tensor,
  plan: StagePlan,
  tape?: Tape,
): Promise<StageResult> {
  const options = plan.options;
  const order = hookOrder(def, options);
  for (const n of [...plan.reads, ...plan.writes.keys()]) {
    if (!order.includes(n)) throw new FactlensError(`stage ${def.key}: no hook point "${n}" (this stage has: ${order.join(', ')})`);
  }
  const writes = order.filter((n) => plan.writes.has(n));
  const pendingReads = order.filter((n) => plan.reads.has(n) && !plan.writes.has(n));
  const provided = new Map<string, Tensor>();
  const reads = new Map<string, Tensor>();

  const runSegment = async (spec: SegmentSpec) => {
    const compiled = await compileSegment(def, spec);
    const feeds: Record<string, Tensor> = {};
    for (const v of compiled.inputs) feeds[v.name] = feedFor(v.name, acts, weights, provided, def);
    const out = await compiled.run(feeds);
    tape?.recordSegment(def, spec, feeds, out);
    return out;
  };

  for (const w of writes) {
    const idx = order.indexOf(w);
    const here = pendingReads.filter((r) => order.indexOf(r) < idx);
    const out = await runSegment({ provided: [...provided.keys()], emitHooks: [...here, w], emitOuts: [], options });
    for (const r of here) {
      reads.set(r, out[hookOutput(r)]);
      pendingReads.splice(pendingReads.indexOf(r), 1);
    }
    let value = out[hookOutput(w)];
    for (const fn of plan.writes.get(w)!) {
      const replaced = await fn(value);
      if (replaced) {
        checkSameShape(replaced, value, def, w);
        tape?.recordReplacement(value, replaced);
        value = replaced;
      }
    }
    provided.set(w, value);
    if (plan.reads.has(w)) reads.set(w, value);
  }
  const out = await runSegment({ provided: [...provided.keys()], emitHooks: pendingReads, emitOuts: plan.outs ?? 'all', options });
  for (const r of pendingReads) reads.set(r, out[hookOutput(r)]);
  const outs: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(out)) if (k.startsWith('out:')) outs[k.slice(4)] = v;
  return { outs, reads };
}

function feedFor(name: string, acts: Record<string, Tensor>, weights: (l: string) => Tensor, provided: Map<string, Tensor>, def: StageDef): Tensor {
  const [kind, local] = [name.slice(0, name.indexOf(':') + 1), name.slice(name.indexOf(':') + 1)];
  if (name === hookInput(local) && kind === 'hook:') return provided.get(local)!;
  if (name === actInput(local)) {
    const t = acts[local];
    if (!t) throw new FactlensError(`stage ${def.key}: missing activation input "${local}"`);
    return t;
  }
  if (name === weightInput(local)) return weights(local);
  throw new FactlensError(`stage ${def.key}: unexpected graph input ${name}`);
}

function checkSameShape(replaced: Tensor, original: Tensor, def: StageDef, hook: string): void {
  if (replaced.shape.length !== original.shape.length || replaced.shape.some((d, i) => d !== original.shape[i])) {
    throw new FactlensError(`hook "${hook}" (${def.key.split(':')[0]}) returned shape [${replaced.shape}], expected [${original.shape}]`);
  }
}

export { outName };
