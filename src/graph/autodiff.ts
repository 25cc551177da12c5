/**
 * Reverse-mode differentiation of IR graphs. Each op has a rule that emits
 * ONNX ops computing its input cotangents, so the backward pass of a stage is
 * itself an ONNX graph (built into the same Graph as its forward pass).
 * Nodes may carry a custom rule (`node.vjp`), used by the selective scan.
 */
import { Graph, Node, Value } from './ir';

/** Sum `grad` down to `shape` (undo numpy broadcasting). */
export function unbroadcast(g: Graph, grad: Value, shape: Value['shape']): Value {
  const lead = grad.shape.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < grad.shape.length; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && grad.shape[i] !== 1) axes.push(i);
  }
  if (!axes.length) return grad;
  let out = g.reduceSum(grad, axes, true);
  if (lead > 0) out = g.squeeze(out, [...Array(lead).keys()]);
  return out;
}

type Rule = (g: Graph, n: Node, gy: Value) => (Value | null)[];

const swapLast = (g: Graph, x: Value): Value => {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return g.transpose(x, perm);
};

const rules: Record<string, Rule> = {
  Identity: (_g, _n, gy) => [gy],
  Add: (g, n, gy) => [unbroadcast(g, gy, n.inputs[0]!.shape), unbroadcast(g, gy, n.inputs[1]!.shape)],
  Sub: (g, n, gy) => [unbroadcast(g, gy, n.inputs[0]!.shape), unbroadcast(g, g.neg(gy), n.inputs[1]!.shape)],
  Mul: (g, n, gy) => {
    const [a, b] = n.inputs as Value[];
    return [unbroadcast(g, g.mul(gy, b), a.shape), unbroadcast(g, g.mul(gy, a), b.shape)];
  },
  Div: (g, n, gy) => {
    const [a, b] = n.inputs as Value[];
    const ga = g.div(gy, b); // d(a/b)/da = 1/b
    const gb = g.neg(g.mul(ga, n.outputs[0])); // d(a/b)/db = -(a/b)/b
    return [unbroadcast(g, ga, a.shape), unbroadcast(g, gb, b.shape)];
  },
  Neg: (g, _n, gy) => [g.neg(gy)],
  // The IR emits Pow only as square(x) = Pow(x, 2).
  Pow: (g, n, gy) => [g.mul(gy, g.mul(n.inputs[0]!, g.scalar(2))), null],
  Exp: (g, n, gy) => [g.mul(gy, n.outputs[0])],
  Log: (g, n, gy) => [g.div(gy, n.inputs[0]!)],
  Sqrt: (g, n, gy) => [g.div(gy, g.mul(n.outputs[0], g.scalar(2)))],
  Sigmoid: (g, n, gy) => {
    const y = n.outputs[0];
    return [g.mul(gy, g.mul(y, g.sub(g.scalar(1), y)))];
  },
  Tanh: (g, n, gy) => {
    const y = n.outputs[0];
    return [g.mul(gy, g.sub(g.scalar(1), g.mul(y, y)))];
  },
  Relu: (g, n, gy) => [g.where(g.greater(n.inputs[0]!, g.scalar(0)), gy, g.scalar(0))],
  Abs: (g, n, gy) => [g.mul(gy, g.sign(n.inputs[0]!))],
  Erf: (g, n, gy) => {
    const x = n.inputs[0]!;
    return [g.mul(gy, g.mul(g.exp(g.neg(g.mul(x, x))), g.scalar(2 / Math.sqrt(Math.PI))))];
  },
  MatMul: (g, n, gy) => {
    const [a, b] = n.inputs as Value[];
    const ga = unbroadcast(g, g.matmul(gy, swapLast(g, b)), a.shape);
    if (b.shape.length === 2 && a.shape.length > 2) {
      // Weight gradient of a linear map: flatten the batch dims into one matmul.
      const k = b.shape[0] as number;
      const m = b.shape[1] as number;
      const a2 = g.reshape(a, [-1, k]); // [rows,K]
      const g2 = g.reshape(gy, [-1, m]); // [rows,N]
      return [ga, g.matmul(g.transpose(a2, [1, 0]), g2)]; // [K,N]
    }
    return [ga, unbroadcast(g, g.matmul(swapLast(g, a), gy), b.shape)];
  },
  Transpose: (g, n, gy) => {
    const perm = n.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(gy, inv)];
  },
  Reshape: (g, n, gy) => [g.reshapeLike(gy, n.inputs[0]!), null],
  Expand: (g, n, gy) => [unbroadcast(g, gy, n.inputs[0]!.shape), null],
  Unsqueeze: (g, n, gy) => [g.squeeze(gy, intsOf(g, n.inputs[1]!)), null],
  Squeeze: (g, n, gy) => [g.unsqueeze(gy, intsOf(g, n.inputs[1]!)), null],
  Slice: (g, n, gy) => {
    const x = n.inputs[0]!;
    const [start] = intsOf(g, n.inputs[1]!);
    const [end] = intsOf(g, n.inputs[2]!);
    const [axis] = intsOf(g, n.inputs[3]!);
    const size = x.shape[axis];
    let after: number;
    if (end >= 2 ** 61) after = 0;
    else if (end < 0) after = -end;
    else if (typeof size === 'number') after = size - end;
    else throw new Error(`autodiff: Slice with a positive end on symbolic axis ${axis} of [${x.shape}]`);
    if (start < 0) throw new Error('autodiff: Slice with a negative start is not differentiable here');
    const pads = new Array(2 * x.shape.length).fill(0);
    pads[axis] = start;
    pads[axis + x.shape.length] = after;
    return [g.pad(gy, pads), null, null, null];
  },
  Pad: (g, n, gy) => {
    const pads = intsOf(g, n.inputs[1]!);
    const r = gy.shape.length;
    let out = gy;
    for (let ax = 0; ax < r; ax++) {
      if (pads[ax] || pads[ax + r]) out = g.slice(out, ax, pads[ax], pads[ax + r] ? -pads[ax + r] : Infinity, n.inputs[0]!.shape[ax]);
    }
    return [out, null];
  },
  Concat: (g, n, gy) => {
    const axis = n.attrs.axis as number;
    const sizes = n.inputs.map((x) => x!.shape[axis]);
    // Two or more symbolic sizes (keys [past S ; run T]): offsets come from the inputs' runtime shapes.
    if (sizes.filter((s) => typeof s !== 'number').length > 1) return n.inputs.map((_, i) => g.sliceConcatPart(gy, axis, n.inputs as Value[], i));
    const grads: Value[] = [];
    for (let i = 0; i < sizes.length; i++) {
      const before = sizes.slice(0, i);
      const after = sizes.slice(i + 1);
      if (before.every((s) => typeof s === 'number')) {
        const start = (before as number[]).reduce((p, q) => p + q, 0);
        const end = after.every((s) => typeof s === 'number') && after.length
          ? -(after as number[]).reduce((p, q) => p + q, 0)
          : after.length ? null : Infinity;
        if (end === null) {
          if (typeof sizes[i] !== 'number') throw new Error('autodiff: Concat of two symbolic sizes');
          grads.push(g.slice(gy, axis, start, start + (sizes[i] as number), sizes[i]));
        } else grads.push(g.slice(gy, axis, start, end, sizes[i]));
      } else if (after.every((s) => typeof s === 'number')) {
        const tail = (after as number[]).reduce((p, q) => p + q, 0);
        if (typeof sizes[i] !== 'number') throw new Error('autodiff: Concat of two symbolic sizes');
        grads.push(g.slice(gy, axis, -(tail + (sizes[i] as number)), tail ? -tail : Infinity, sizes[i]));
      } else throw new Error('autodiff: Concat with symbolic sizes on both sides');
    }
    return grads;
  },
  ReduceSum: (g, n, gy) => {
    const x = n.inputs[0]!;
    const axes = intsOf(g, n.inputs[1]!);
    const keep = n.attrs.keepdims !== 0;
    return [g.expandLike(keep ? gy : g.unsqueeze(gy, axes), x), null];
  },
  ReduceMean: (g, n, gy) => {
    const x = n.inputs[0]!;
    const axes = intsOf(g, n.inputs[1]!);
    const count = axes.map((a) => x.shape[a]).reduce((p: number, d) => {
      if (typeof d !== 'number') throw new Error(`autodiff: ReduceMean over symbolic axis of [${x.shape}]`);
      return p * d;
    }, 1);
    const keep = n.attrs.keepdims !== 0;
    const spread = g.expandLike(keep ? gy : g.unsqueeze(gy, axes), x);
    return [g.mul(spread, g.scalar(1 / count)), null];
  },
  Softmax: (g, n, gy) => {
    const y = n.outputs[0];
    const axis = n.attrs.axis as number;
    const dot = g.reduceSum(g.mul(gy, y), [axis], true);
    return [g.mul(y, g.sub(gy, dot))];
  },
  // y = x − log Σ exp(x): dx = dy − softmax(x) · Σ dy.
  LogSoftmax: (g, n, gy) => {
    const axis = n.attrs.axis as number;
    return [g.sub(gy, g.mul(g.exp(n.outputs[0]), g.reduceSum(gy, [axis], true)))];
  },
  Where: (g, n, gy) => {
    const [c, a, b] = n.inputs as Value[];
    const zero = g.scalar(0);
    return [null, unbroadcast(g, g.where(c, gy, zero), a.shape), unbroadcast(g, g.where(c, zero, gy), b.shape)];
  },
};

/** Read back the int64 constant behind an axes/starts input. */
function intsOf(g: Graph, v: Value): number[] {
  const c = g.constants.find((k) => k.value.id === v.id);
  if (!c || !(c.data instanceof BigInt64Array)) throw new Error('autodiff: expected a constant int64 input');
  return Array.from(c.data, (x) => Number(x));
}

/**
 * Emit cotangents of `wrt` given cotangents `seeds` of `ys`, into `g` itself.
 * Returns null for a `wrt` value that no `y` depends on.
 */
export function backward(g: Graph, ys: Value[], seeds: Value[], wrt: Value[]): (Value | null)[] {
  const nodes = [...g.nodes];
  const wrtIds = new Set(wrt.map((v) => v.id));
  // Forward pass: which values depend on a wrt value.
  const live = new Set<number>(wrtIds);
  const operands = (n: Node) => [...n.inputs, ...(n.captures ?? [])];
  for (const n of nodes) if (operands(n).some((v) => v && live.has(v.id))) n.outputs.forEach((o) => live.add(o.id));
  const grads = new Map<number, Value>();
  const accumulate = (v: Value, gv: Value | null): void => {
    if (!gv || !live.has(v.id)) return;
    const prev = grads.get(v.id);
    grads.set(v.id, prev ? g.add(prev, gv) : gv);
  };
  ys.forEach((y, i) => accumulate(y, seeds[i]));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const outGrads = n.outputs.map((o) => grads.get(o.id) ?? null);
    if (outGrads.every((x) => !x)) continue;
    if (!operands(n).some((v) => v && live.has(v.id))) continue;
    let inGrads: (Value | null)[];
    if (n.vjp) inGrads = n.vjp(g, n, outGrads);
    else {
      const rule = rules[n.op];
      if (!rule) throw new Error(`autodiff: no reverse rule for op ${n.op}`);
      if (n.outputs.length !== 1) throw new Error(`autodiff: op ${n.op} has several outputs and no custom rule`);
      inGrads = rule(g, n, outGrads[0]!);
    }
    operands(n).forEach((v, k) => v && accumulate(v, inGrads[k] ?? null));
  }
  return wrt.map((v) => grads.get(v.id) ?? null);
}
