/**
 * Gradients of a scalar function of the logits with respect to hook
 * activations and weights: one taped forward pass, one backward pass.
 */
import { FactlensError } from '../errors';
import { Batch } from './batch';
import type { Model, ModelInput } from './model';
import { RunOptions } from './forward';
import { Tape } from './tape';
import { Tensor } from './tensor';
import { resolveHook } from './hooks';
import { resolveWeightName } from './weight-names';
import { logSumExp, softmax } from './logits';

/** A scalar loss of the logits [B,P,V] and its gradient with respect to them. */
export type LogitLoss = (logits: Tensor, batch: Batch) => { loss: number; grad: Tensor };
/** The same, computed asynchronously (a loss from runtime/losses.ts runs its graph in onnxruntime). */
export type AsyncLogitLoss = (logits: Tensor, batch: Batch) => Promise<{ loss: number; grad: Tensor }>;

/** Σ over rows and real positions of −log p(next token): the fixtures' loss. */
export const nextTokenNll: LogitLoss = (logits, batch) => {
  const [B, T, V] = logits.shape;
  const grad = new Float32Array(logits.size); // [B,T,V]
  let loss = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < batch.lengths[b]; t++) {
      const off = (b * T + t) * V;
      const target = batch.rows[b][t + 1];
      const { logZ, probs } = softmaxRow(logits.data, off, V);
      loss += logZ - logits.data[off + target];
      grad.set(probs, off);
      grad[off + target] -= 1;
    }
  }
  return { loss, grad: new Tensor(grad, [B, T, V]) };
};

/** −Σ_rows log p(target_b) at the read-out position (logits [B,1,V]). */
export function targetNll(targets: number[]): LogitLoss {
  return (logits) => {
    const [B, P, V] = logits.shape;
    if (P !== 1) throw new FactlensError('targetNll expects logits at one position per row (logits: "last")');
    const grad = new Float32Array(logits.size);
    let loss = 0;
    for (let b = 0; b < B; b++) {
      const { logZ, probs } = softmaxRow(logits.data, b * V, V);
      loss += logZ - logits.data[b * V + targets[b]];
      grad.set(probs, b * V);
      grad[b * V + targets[b]] -= 1;
    }
    return { loss, grad: new Tensor(grad, [B, P, V]) };
  };
}

/** log Z and the softmax of the V logits at x[off..off+V) (logits.ts does the arithmetic). */
export function softmaxRow(x: Float32Array, off: number, V: number): { logZ: number; probs: Float32Array } {
  const row = x.subarray(off, off + V); // [V]
  return { logZ: logSumExp(row), probs: softmax(row) };
}

export interface GradientResult {
  loss: number;
  /** By the name asked for: hook activations [B,T,...] or weights in PyTorch layout. */
  grads: Map<string, Tensor>;
  logits: Tensor;
}

/**
 * d loss / d (each name in `wrt`): hook names (any spelling) or weight names, canonical
 * ("layers.2.mixer.out_proj.weight") or as the checkpoint stores them ("backbone.layers.2...").
 */
export async function gradients(model: Model, input: ModelInput, loss: LogitLoss | AsyncLogitLoss, wrt: string[], opts: RunOptions = {}): Promise<GradientResult> {
  const batch = model.batch(input);
  const tape = new Tape();
  const captured = new Map<string, Tensor>();
  const hooks: NonNullable<RunOptions['hooks']> = [...(opts.hooks ?? [])];
  const targets: { name: string; get: () => Tensor }[] = [];
  for (const name of wrt) {
    const weightName = resolveWeightName(model, name); // canonical or the checkpoint's own (HF) spelling
    if (weightName !== null) {
      const w = model.weight(weightName);
      targets.push({ name, get: () => w });
      continue;
    }
    const canonical = resolveHook(name, model.arch, model.nLayers, model.parallelResidual).name;
    if (canonical.endsWith('mixer.state')) throw new FactlensError('gradients with respect to mixer.state are not supported');
    // An identity write hook makes the point a segment boundary, so its tensor is a tape leaf.
    hooks.push([canonical, (t) => void captured.set(canonical, t)]);
    targets.push({ name, get: () => captured.get(canonical)! });
  }
  const res = await model.run(batch, { ...opts, hooks, tape, logits: opts.logits ?? 'all' });
  if (!res.logits) throw new FactlensError('gradients: the run produced no logits');
  const { loss: value, grad } = await loss(res.logits, batch);
  const leaves = targets.map((t) => t.get());
  const gs = await tape.backward(new Map([[res.logits, grad]]), leaves);
  return { loss: value, grads: new Map(targets.map((t, i) => [t.name, gs[i]])), logits: res.logits };
}

/** One activation vector: a hook at a position of a single prompt. */
export interface Site {
  hook: string;
  position: number;
}

function layerOf(model: Model, hook: string): number | null {
  return resolveHook(hook, model.arch, model.nLayers, model.parallelResidual).layer;
}

/**
 * Vector–Jacobian products uᵢᵀ ∂to/∂from for several cotangents uᵢ at once:
 * the prompt is replicated once per uᵢ and one backward pass serves them all.
 * Everything else at the `from` hook (other positions) is held fixed.
 */
export async function vjp(model: Model, input: ModelInput, from: Site, to: Site, us: Float32Array[], opts: RunOptions = {}): Promise<Float32Array[]> {
  const base = model.batch(input);
  if (base.B !== 1) throw new FactlensError('vjp: give a single prompt');
  const k = us.length;
  const batch = model.batch(Array.from({ length: k }, () => base.rows[0]));
  const fromName = resolveHook(from.hook, model.arch, model.nLayers, model.parallelResidual).name;
  const toName = resolveHook(to.hook, model.arch, model.nLayers, model.parallelResidual).name;
  let fromT: Tensor | null = null;
  let toT: Tensor | null = null;
  const hooks: NonNullable<RunOptions['hooks']> = [
    ...(opts.hooks ?? []),
    [fromName, (t) => void (fromT = t)],
    [toName, (t) => void (toT = t)],
  ];
  const toLayer = layerOf(model, toName);
  const tape = new Tape();
  await model.run(batch, { ...opts, hooks, tape, untilLayer: toLayer === null ? undefined : toLayer + 1, logits: 'all' });
  if (!fromT || !toT) throw new FactlensError(`vjp: ${fromT ? toName : fromName} was not reached in the run`);
  const to_ = toT as Tensor;
  const from_ = fromT as Tensor;
  const width = to_.stride(1);
  if (us.some((u) => u.length !== width)) throw new FactlensError(`vjp: cotangents must have length ${width} (the width of ${toName})`);
  if (to.position < 0 || to.position >= to_.shape[1] || from.position < 0 || from.position >= from_.shape[1]) throw new FactlensError('vjp: position out of range');
  const seed = Tensor.zeros(to_.shape); // [k,T,...]
  us.forEach((u, r) => seed.data.set(u, (r * to_.shape[1] + to.position) * width));
  const [g] = await tape.backward(new Map([[to_, seed]]), [from_]); // [k,T,...]
  const w = from_.stride(1);
  return us.map((_, r) => g.data.slice((r * from_.shape[1] + from.position) * w, (r * from_.shape[1] + from.position + 1) * w));
}

/** The full Jacobian ∂to/∂from [D_to, D_from], by batched VJPs of the unit vectors. */
export async function jacobian(model: Model, input: ModelInput, from: Site, to: Site, opts: RunOptions & { chunk?: number } = {}): Promise<Tensor> {
  const probe = await model.run(input, { cache: [to.hook, from.hook], untilLayer: undefined, logits: 'none' });
  const dOut = probe.cache.get(to.hook).stride(1);
  const dIn = probe.cache.get(from.hook).stride(1);
  const J = new Float32Array(dOut * dIn); // [D_to,D_from]
  const chunk = opts.chunk ?? 64;
  for (let i0 = 0; i0 < dOut; i0 += chunk) {
    const us = Array.from({ length: Math.min(chunk, dOut - i0) }, (_, r) => {
      const u = new Float32Array(dOut);
      u[i0 + r] = 1;
      return u;
    });
    const rows = await vjp(model, input, from, to, us, opts);
    rows.forEach((row, r) => J.set(row, (i0 + r) * dIn));
  }
  return new Tensor(J, [dOut, dIn]);
}
