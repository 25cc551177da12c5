/**
 * The first-order approximation of one prompt (evandez/relations
 * order_1_approx): J = ∂z/∂h [D,D] with h at the subject's last token of
 * stream k and z at the last token of stream e, every other position held
 * fixed; and b = z − J h.
 *
 * Reverse mode with the library's gradient tape: the prompt is replicated
 * once per output coordinate (`chunk` rows per pass), each row seeded with a
 * unit cotangent on z, and one backward pass returns `chunk` rows of J. Runs
 * resume at stream k and at the subject's last token (encode.ts), so a
 * Jacobian costs D/chunk passes over the last few tokens of the layers
 * between h and z.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { Tape } from '../../runtime/tape';
import { Tensor } from '../../runtime/tensor';
import type { HookFn } from '../../runtime/forward';
import { EncodedPrompt, runFrom, streamAt, streamLast } from './encode';

export interface FirstOrderApprox {
  /** ∂z/∂h, row-major [D,D] (row i = gradient of z_i). */
  J: Float32Array;
  /** z − J h [D]. */
  b: Float32Array;
  h: Float32Array;
  z: Float32Array;
  hStream: number;
  zStream: number;
}

/**
 * ∂(stream e at the last token)/∂(stream k at the subject's last token) for
 * several k at once, each [D,D] row-major. One taped run from the lowest k
 * with identity hooks on the other streams, and one backward pass per chunk
 * of unit cotangents, give every layer's Jacobian together: a whole layer
 * sweep costs what the deepest Jacobian costs.
 */
export async function streamJacobians(model: Model, prompt: EncodedPrompt, ks: number[], e: number, opts: { chunk?: number } = {}): Promise<Map<number, Float32Array>> {
  const D = model.config.dModel;
  const out = new Map<number, Float32Array>();
  for (const k of ks) if (k > e || k < 0) throw new FactlensError(`streamJacobians: h (stream ${k}) must lie in 0..${e} (z is stream ${e})`);
  const todo = [...new Set(ks)].filter((k) => k < e).sort((a, b) => a - b);
  if (ks.includes(e)) {
    // The same stream: z depends on h only if the subject's last token is the prompt's last token.
    const J = new Float32Array(D * D); // [D,D]
    if (prompt.subjectLast === prompt.ids.length - 1) for (let i = 0; i < D; i++) J[i * D + i] = 1;
    out.set(e, J);
  }
  if (!todo.length) return out;
  for (const k of todo) out.set(k, new Float32Array(D * D));
  const k0 = todo[0];
  const chunk = Math.max(1, Math.min(opts.chunk ?? defaultChunk(model), D));
  const last = prompt.ids.length - 1 - prompt.start;
  const at = prompt.subjectLast - prompt.start;
  for (let i0 = 0; i0 < D; i0 += chunk) {
    const n = Math.min(chunk, D - i0);
    const tape = new Tape();
    const captured = new Map<number, Tensor>();
    const hooks: Array<[string, HookFn]> = todo.slice(1).map((k) => [`layers.${k}.resid_pre`, (t: Tensor) => void captured.set(k, t)]);
    const res = await runFrom(model, Array.from({ length: n }, () => ({ prompt })), k0, { until: e, tape, logits: false, hooks });
    const [B, T] = res.residual.shape;
    const seed = Tensor.zeros([B, T, D]); // [n,T',D]
    for (let r = 0; r < n; r++) seed.data[(r * T + last) * D + i0 + r] = 1;
    const leaves = todo.map((k) => (k === k0 ? res.start : captured.get(k)!));
    const grads = await tape.backward(new Map([[res.residual, seed]]), leaves); // each [n,T',D]
    todo.forEach((k, j) => {
      const J = out.get(k)!;
      for (let r = 0; r < n; r++) J.set(grads[j].data.subarray((r * T + at) * D, (r * T + at + 1) * D), (i0 + r) * D);
    });
  }
  return out;
}

/** Rows per backward pass: all D where runs resume at the subject (Mamba-1, transformers: a few tokens), fewer for Mamba-2's full-length runs. */
function defaultChunk(model: Model): number {
  return model.arch === 'mamba' || !model.recurrent ? model.config.dModel : 64;
}

/** ∂(stream e at the last token)/∂(stream k at the subject's last token), [D,D] row-major. */
export async function streamJacobian(model: Model, prompt: EncodedPrompt, k: number, e: number, opts: { chunk?: number } = {}): Promise<Float32Array> {
  return (await streamJacobians(model, prompt, [k], e, opts)).get(k)!;
}

/** J, h, z and b = z − J h of one encoded prompt, for h at each stream in `ks`. */
export async function firstOrderApproxes(model: Model, prompt: EncodedPrompt, ks: number[], e: number, opts: { chunk?: number } = {}): Promise<Map<number, FirstOrderApprox>> {
  const D = model.config.dModel;
  const Js = await streamJacobians(model, prompt, ks, e, opts);
  const z = streamLast(model, prompt, e).slice();
  const out = new Map<number, FirstOrderApprox>();
  for (const [k, J] of Js) {
    const h = streamAt(model, prompt, k).slice();
    const b = new Float32Array(D);
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += J[i * D + j] * h[j];
      b[i] = z[i] - s;
    }
    out.set(k, { J, b, h, z, hStream: k, zStream: e });
  }
  return out;
}

export async function firstOrderApprox(model: Model, prompt: EncodedPrompt, k: number, e: number, opts: { chunk?: number } = {}): Promise<FirstOrderApprox> {
  return (await firstOrderApproxes(model, prompt, [k], e, opts)).get(k)!;
}
