/**
 * Composable losses of logits whose gradients come from the reverse-mode engine: a loss is a small
 * IR graph (graph/ir.ts) over the logits at chosen positions [P,V] and any parameters, built from the
 * terms below; graph/autodiff.ts differentiates it and onnxruntime runs value and gradient in one
 * session, compiled once per loss definition (its dims are symbolic). No term derives its gradient by hand.
 *
 *   const loss = defineLoss('my-loss', (L) => ({ nll: nllTerm(L, L.logp, L.input('targets', ['P', 'V'])) }));
 *   const r = await loss.evaluate({ logits: rows, targets: w }, []);   // r.parts.nll [P], r.gradLogits [P,V]
 */
import { FactlensError } from '../errors';
import { Graph, Value } from '../graph/ir';
import { backward } from '../graph/autodiff';
import { Compiled } from '../graph/session';
import { Tensor } from './tensor';

/** The graph a loss is built in: the logits rows, their log-softmax, and named inputs. */
export interface LossGraph {
  g: Graph;
  /** The logits at the positions the loss reads [P,V]. */
  logits: Value;
  /** log softmax of `logits` over the vocabulary [P,V]. */
  logp: Value;
  /** A fed tensor the loss does not differentiate. */
  input(name: string, shape: Array<number | string>): Value;
  /** A fed tensor the loss is differentiated with respect to (besides the logits). */
  param(name: string, shape: Array<number | string>): Value;
}

export interface LossValue {
  /** Each term's output, by the name the definition gave it. */
  parts: Record<string, Tensor>;
  /** Σ over every term and every entry of it. */
  loss: number;
  /** log softmax of the logits rows [P,V]. */
  logp: Tensor;
  /** d loss / d logits rows [P,V]. */
  gradLogits: Tensor;
  /** d loss / d each param, by name. */
  gradParams: Record<string, Tensor>;
}

export interface Loss {
  name: string;
  /** Value and gradients at `feeds` (`logits` [P,V] and every input and param the definition declared). */
  evaluate(feeds: Record<string, Tensor>): Promise<LossValue>;
}

/**
 * A loss from terms: `build` declares inputs/params and returns the terms (each a Value); the loss is
 * the sum of all their entries. Compiled on first use.
 */
export function defineLoss(name: string, build: (L: LossGraph) => Record<string, Value>): Loss {
  let compiled: Promise<{ session: Compiled; parts: string[]; params: string[] }> | null = null;
  const compile = async () => {
    const g = new Graph(name.replace(/[^A-Za-z0-9_]/g, '_'));
    const logits = g.input('logits', ['P', 'V']);
    const logp = g.node('LogSoftmax', [logits], { axis: -1 }, [logits.shape])[0]; // [P,V]
    const params = new Map<string, Value>();
    const declared = new Set<string>(['logits']);
    const declare = (n: string) => {
      if (declared.has(n)) throw new FactlensError(`loss ${name}: input "${n}" is declared twice`);
      declared.add(n);
    };
    const L: LossGraph = {
      g, logits, logp,
      input: (n, shape) => (declare(n), g.input(n, shape)),
      param: (n, shape) => {
        declare(n);
        const v = g.input(n, shape);
        params.set(n, v);
        return v;
      },
    };
    const terms = build(L);
    const names = Object.keys(terms);
    const total = names.map((k) => sumAll(g, terms[k])).reduce((a, b) => g.add(a, b));
    const wrt = [logits, ...params.values()];
    const grads = backward(g, [total], [g.scalar(1)], wrt);
    names.forEach((k) => g.output(`part:${k}`, terms[k]));
    g.output('loss', total);
    g.output('logp', logp);
    wrt.forEach((v, i) => g.output(`grad:${v.name}`, grads[i] ?? g.mul(v, g.scalar(0))));
    return { session: await Compiled.create(g), parts: names, params: [...params.keys()] };
  };
  return {
    name,
    async evaluate(feeds) {
      compiled ??= compile();
      compiled.catch(() => (compiled = null));
      const { session, parts, params } = await compiled;
      for (const v of session.inputs) if (!feeds[v.name]) throw new FactlensError(`loss ${name}: no tensor fed for input "${v.name}"`);
      const out = await session.run(feeds);
      return {
        parts: Object.fromEntries(parts.map((k) => [k, out[`part:${k}`]])),
        loss: out.loss.data[0],
        logp: out.logp,
        gradLogits: out['grad:logits'],
        gradParams: Object.fromEntries(params.map((k) => [k, out[`grad:${k}`]])),
      };
    },
  };
}

function sumAll(g: Graph, x: Value): Value {
  return g.reduceSum(x, x.shape.map((_, i) => i), false);
}

/** −Σ_v w·log p per row [P]: w [P,V] puts each target token's weight at its position (0 elsewhere). */
export function nllTerm(L: LossGraph, logp: Value, weights: Value): Value {
  return L.g.neg(L.g.reduceSum(L.g.mul(weights, logp), [1], false));
}

/** w_p · KL(P_now ‖ P_init) per row [P] = w_p Σ_v p (log p − log p_init); w [P,1] (0: not a KL row). */
export function klTerm(L: LossGraph, logp: Value, logpInit: Value, weights: Value): Value {
  const { g } = L;
  const perRow = g.reduceSum(g.mul(g.exp(logp), g.sub(logp, logpInit)), [1], true); // [P,1]
  return g.squeeze(g.mul(weights, perRow), [1]);
}

/** s_i · ‖x_i‖ per row [n] (x [n,W], s [n,1]); its gradient at x_i = 0 is 0 (torch.norm's subgradient). */
export function normTerm(L: LossGraph, x: Value, scale: Value): Value {
  const { g } = L;
  const sq = g.reduceSum(g.square(x), [1], true); // [n,1]
  const pos = g.greater(sq, g.scalar(0));
  const n = g.where(pos, g.sqrt(g.where(pos, sq, g.scalar(1))), g.scalar(0)); // no 0/0 in the backward pass
  return g.squeeze(g.mul(scale, n), [1]);
}

/** Logits rows at (row, position) pairs of logits [B,T,V], as one [P,V] tensor. */
export function gatherPositions(logits: Tensor, at: Array<[number, number]>): Tensor {
  const [, T, V] = logits.shape;
  const out = Tensor.zeros([at.length, V]); // [P,V]
  at.forEach(([b, t], p) => out.data.set(logits.data.subarray((b * T + t) * V, (b * T + t + 1) * V), p * V));
  return out;
}

/** The inverse of gatherPositions for gradients: rows [P,V] added into a zero [B,T,V]. */
export function scatterPositions(rows: Tensor, at: Array<[number, number]>, shape: number[]): Tensor {
  const [, T, V] = shape;
  const out = Tensor.zeros(shape); // [B,T,V]
  at.forEach(([b, t], p) => {
    const off = (b * T + t) * V;
    for (let v = 0; v < V; v++) out.data[off + v] += rows.data[p * V + v];
  });
  return out;
}
