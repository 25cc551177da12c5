/**
 * Run one stage with hooks: cut it at rewritable hook points and host ops,
 * run each segment, let the hooks see (and replace) the tensors in between,
 * and record everything on the tape when gradients are wanted.
 *
 * A segment also returns the hook points it computed that later segments
 * read ("carries"), so nothing is computed twice: e.g. a hook on Mamba's
 * mixer.ssm_out does not make the next segment redo in_proj for the gate.
 */
import { FactlensError } from '../errors';
import { Tensor } from './tensor';
import {
  actInput, compileSegment, hookInput, hookOutput, hostKey, hostOut, SegmentSpec, StageDef, stageLayout,
  StageLayout, StageOptions, weightInput, outName,
} from './stage';
import type { Tape } from './tape';

/** A hook on one point of one stage: may return a replacement (same shape). */
export type StageHook = (act: Tensor) => Tensor | void | Promise<Tensor | void>;

export interface StagePlan {
  reads: Set<string>; // hook points to return (after any rewrite)
  writes: Map<string, StageHook[]>; // hook points that may be rewritten, in call order
  options: StageOptions;
  /** Stage outputs to compute (default all): leaving out a layer's final recurrent state spares work. */
  outs?: string[];
  /** Hook points whose values are given up front (the stage is run from there on). */
  given?: Map<string, Tensor>;
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
  const { options } = plan;
  const layout = stageLayout(def, options);
  const { order } = layout;
  for (const n of [...plan.reads, ...plan.writes.keys(), ...(plan.given?.keys() ?? [])]) {
    if (n.startsWith('host:') || !order.includes(n)) {
      throw new FactlensError(`stage ${def.key}: no hook point "${n}" (this stage has: ${order.filter((o) => !o.startsWith('host:')).join(', ')})`);
    }
  }
  const provided = new Map<string, Tensor>(plan.given ?? []); // hook points and host outputs (by feed name)
  const has = (p: string) => provided.has(p) || provided.has(`${p}#done`);
  const outs = stageOuts(layout, plan);

  const runSegment = async (spec: SegmentSpec) => {
    const { compiled, aliases } = await compileSegment(def, spec);
    const feeds: Record<string, Tensor> = {};
    for (const v of compiled?.inputs ?? []) feeds[v.name] = feedFor(v.name, acts, weights, provided, def);
    const out = compiled ? await compiled.run(feeds) : {};
    if (compiled) tape?.recordSegment(def, spec, feeds, { ...out });
    for (const [name, same] of aliases) out[name] = out[same] ?? feeds[same] ?? feedFor(same, acts, weights, provided, def);
    return out;
  };
  const providedKeys = () => [...provided.keys()].filter((k) => !k.startsWith('hostout:')).map((k) => k.replace(/#done$/, ''));

  const cuts = order.filter((n) => n.startsWith('host:') || plan.writes.has(n)).filter((n) => !has(n));
  for (const cut of cuts) {
    const idx = order.indexOf(cut);
    const carry = carriesBefore(layout, idx, plan, outs, acts, has);
    const out = await runSegment({ provided: providedKeys(), emitHooks: [...carry, cut], emitOuts: [], options });
    for (const n of carry) provided.set(n, out[hookOutput(n)]);
    if (cut.startsWith('host:')) {
      await runHost(layout, cut, out, provided, tape);
      continue;
    }
    let value = out[hookOutput(cut)];
    for (const fn of plan.writes.get(cut)!) {
      const replaced = await fn(value);
      if (replaced) {
        checkSameShape(replaced, value, def, cut);
        tape?.recordReplacement(value, replaced);
        value = replaced;
      }
    }
    provided.set(cut, value);
  }
  const pendingReads = order.filter((n) => plan.reads.has(n) && !has(n));
  const out = await runSegment({ provided: providedKeys(), emitHooks: pendingReads, emitOuts: outs, options });
  const reads = new Map<string, Tensor>();
  for (const r of plan.reads) reads.set(r, provided.get(r) ?? out[hookOutput(r)]);
  const result: Record<string, Tensor> = {};
  for (const o of outs) result[o] = out[outName(o)];
  return { outs: result, reads };
}

/** The stage outputs a plan computes (all by default). */
function stageOuts(layout: StageLayout, plan: StagePlan): string[] {
  return plan.outs ?? [...layout.sources.keys()].filter((k) => k.startsWith('out:')).map((k) => k.slice(4));
}

/**
 * Compile, ahead of its run, the one segment that runStage uses for a plan
 * without hooks on a stage without host ops (a no-op for anything else).
 */
export async function precompile(def: StageDef, plan: StagePlan): Promise<void> {
  const layout = stageLayout(def, plan.options);
  if (layout.hosts.size || plan.reads.size || plan.writes.size || plan.given?.size) return;
  await compileSegment(def, { provided: [], emitHooks: [], emitOuts: stageOuts(layout, plan), options: plan.options });
}

/**
 * Hook points computed before order[idx] that the segment ending there should
 * also return: those read later (by later points, host ops or outputs, or
 * asked for), and computable from what is available now.
 */
function carriesBefore(layout: StageLayout, idx: number, plan: StagePlan, outs: string[], acts: Record<string, Tensor>, has: (p: string) => boolean): string[] {
  const { order, sources } = layout;
  const later = [...order.slice(idx + 1), ...outs.map((o) => `out:${o}`)];
  const needed = new Set<string>();
  for (const x of later) for (const s of sources.get(x) ?? []) needed.add(s);
  const known = new Map<string, boolean>();
  const computable = (p: string): boolean => {
    if (has(p)) return true;
    if (p.startsWith('act:')) return p.slice(4) in acts;
    if (p.startsWith('host:')) return false; // not yet run
    if (!known.has(p)) {
      known.set(p, false); // guards cycles (none expected)
      known.set(p, [...(sources.get(p) ?? [])].every(computable));
    }
    return known.get(p)!;
  };
  return order.slice(0, idx).filter((p) => !p.startsWith('host:') && !has(p) && (needed.has(p) || plan.reads.has(p)) && computable(p));
}

/** Run a host op on the inputs the previous segment returned; its outputs feed later segments. */
async function runHost(layout: StageLayout, cut: string, out: Record<string, Tensor>, provided: Map<string, Tensor>, tape?: Tape): Promise<void> {
  const op = layout.hosts.get(cut)!;
  const prefix = `hostin:${op.name}:`;
  const inputs: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(out)) if (k.startsWith(prefix)) inputs[k.slice(prefix.length)] = t;
  const res = op.forward(inputs);
  const inKeys = Object.keys(inputs);
  const outKeys = Object.keys(res);
  tape?.recordJs(inKeys.map((k) => inputs[k]), outKeys.map((k) => res[k]), (cots) => {
    const g = op.backward(inputs, Object.fromEntries(outKeys.map((k, i) => [k, cots[i]])));
    return inKeys.map((k) => g[k] ?? null);
  });
  for (const k of outKeys) provided.set(hostOut(op.name, k), res[k]);
  provided.set(`${hostKey(op.name)}#done`, res[outKeys[0]]);
}

function feedFor(name: string, acts: Record<string, Tensor>, weights: (l: string) => Tensor, provided: Map<string, Tensor>, def: StageDef): Tensor {
  const local = name.slice(name.indexOf(':') + 1);
  if (name === hookInput(local)) return provided.get(local)!;
  if (name.startsWith('hostout:')) return provided.get(name)!;
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
