/**
 * A gradient tape over a forward run. Each executed segment is recorded with
 * its feeds and outputs; tensors are wired by identity (the output object of
 * one segment is the feed object of the next). `backward` walks the tape in
 * reverse, running each segment's compiled backward graph.
 *
 * Hook rewrites are treated as identity for gradients (right for the additive
 * interventions gradients are used with: ROME's δ, LRE's Jacobians).
 */
import { Tensor } from './tensor';
import { compileSegmentBackward, cotOf, gradOf, SegmentSpec, StageDef } from './stage';

type Entry =
  | { kind: 'segment'; def: StageDef; spec: SegmentSpec; feeds: Record<string, Tensor>; outputs: Record<string, Tensor> }
  | { kind: 'replace'; from: Tensor; to: Tensor }
  | { kind: 'js'; inputs: Tensor[]; outputs: Tensor[]; backward: (cots: (Tensor | null)[]) => (Tensor | null)[] };

export class Tape {
  private entries: Entry[] = [];

  recordSegment(def: StageDef, spec: SegmentSpec, feeds: Record<string, Tensor>, outputs: Record<string, Tensor>): void {
    this.entries.push({ kind: 'segment', def, spec, feeds: { ...feeds }, outputs });
  }

  recordReplacement(from: Tensor, to: Tensor): void {
    this.entries.push({ kind: 'replace', from, to });
  }

  /** A TypeScript-side op (gather, concat...) with its own backward. */
  recordJs(inputs: Tensor[], outputs: Tensor[], backward: (cots: (Tensor | null)[]) => (Tensor | null)[]): void {
    this.entries.push({ kind: 'js', inputs, outputs, backward });
  }

  /**
   * Gradients of Σ seeds·outputs with respect to each tensor in `wrt`
   * (activations seen during the run, or weight tensors fed to it).
   */
  async backward(seeds: Map<Tensor, Tensor>, wrt: Tensor[]): Promise<Tensor[]> {
    const cot = new Map<Tensor, Tensor>();
    const add = (t: Tensor, g: Tensor | null) => {
      if (!g) return;
      const prev = cot.get(t);
      if (!prev) cot.set(t, g);
      else {
        const sum = new Float32Array(prev.data.length);
        for (let i = 0; i < sum.length; i++) sum[i] = prev.data[i] + g.data[i];
        cot.set(t, new Tensor(sum, prev.shape));
      }
    };
    for (const [t, g] of seeds) add(t, g);
    const wrtSet = new Set(wrt);
    const produced = new Set<Tensor>();
    for (const e of this.entries) {
      if (e.kind === 'segment') Object.values(e.outputs).forEach((t) => produced.add(t));
      else if (e.kind === 'replace') produced.add(e.to);
      else e.outputs.forEach((t) => produced.add(t));
    }
    const firstRelevant = this.entries.findIndex((e) => consumes(e).some((t) => wrtSet.has(t)) || produces(e).some((t) => wrtSet.has(t)));
    for (let i = this.entries.length - 1; i >= Math.max(firstRelevant, 0); i--) {
      const e = this.entries[i];
      if (e.kind === 'replace') {
        add(e.from, cot.get(e.to) ?? null);
        continue;
      }
      if (e.kind === 'js') {
        const outCots = e.outputs.map((t) => cot.get(t) ?? null);
        if (outCots.every((c) => !c)) continue;
        e.backward(outCots).forEach((g, k) => add(e.inputs[k], g));
        continue;
      }
      const seeded = Object.keys(e.outputs).filter((k) => cot.has(e.outputs[k]));
      if (!seeded.length) continue;
      const needs = Object.keys(e.feeds).filter((k) => wrtSet.has(e.feeds[k]) || (produced.has(e.feeds[k]) && !k.startsWith('w:')));
      if (!needs.length) continue;
      const bwd = await compileSegmentBackward(e.def, e.spec, seeded, needs);
      const feeds: Record<string, Tensor> = {};
      for (const v of bwd.inputs) {
        feeds[v.name] = v.name.startsWith('cot:') ? cot.get(e.outputs[v.name.slice(4)])! : e.feeds[v.name];
      }
      const res = await bwd.run(feeds);
      for (const k of needs) add(e.feeds[k], res[gradOf(k)]);
    }
    return wrt.map((t) => cot.get(t) ?? Tensor.zeros(t.shape));
  }
}

function consumes(e: Entry): Tensor[] {
  if (e.kind === 'segment') return Object.values(e.feeds);
  if (e.kind === 'replace') return [e.from];
  return e.inputs;
}

function produces(e: Entry): Tensor[] {
  if (e.kind === 'segment') return Object.values(e.outputs);
  if (e.kind === 'replace') return [e.to];
  return e.outputs;
}

export { cotOf };
