/**
 * A small tensor-graph IR that mirrors ONNX ops one to one.
 *
 * Model stages are written against this builder once; the same graph is
 * emitted as ONNX for the forward pass (./onnx.ts) and differentiated into a
 * backward graph (./autodiff.ts). Shapes are tracked symbolically: a dim is a
 * number or a name such as "B" or "T" (or a product like "B*T"), so one
 * compiled session serves every batch size and sequence length.
 */

export type Dim = number | string;
export type DType = 'float32' | 'int64' | 'bool' | 'float16' | 'bfloat16';

export interface Value {
  readonly id: number;
  name: string;
  shape: Dim[];
  dtype: DType;
  /** Set for values read by a Scan body from the enclosing graph. */
  captured?: boolean;
}

export type Attr = number | number[] | string | Graph | { float: number } | { floats: number[] };

/** Custom reverse-mode rule: given output cotangents, emit input cotangents into `g`. */
export type VJP = (g: Graph, node: Node, outGrads: (Value | null)[]) => (Value | null)[];

export interface Node {
  op: string;
  inputs: (Value | null)[];
  outputs: Value[];
  attrs: Record<string, Attr>;
  vjp?: VJP;
  /** Enclosing-graph values a subgraph body reads by name; a custom vjp returns their cotangents after the inputs'. */
  captures?: Value[];
  /** Operator set domain (default: the ONNX one); 'com.microsoft' for onnxruntime's contrib ops. */
  domain?: string;
}

export interface Constant {
  value: Value;
  /** The values, stored in the ONNX model; or, with `external`, read by onnxruntime from a file. */
  data?: Float32Array | BigInt64Array;
  external?: ExternalTensor;
}

/**
 * A tensor that onnxruntime reads from a file itself (ONNX external data): a
 * weight inside a checkpoint's model.safetensors, which is raw little-endian
 * data at a known offset, so no copy of it passes through JavaScript.
 */
export interface ExternalTensor {
  file: string; // absolute path
  offset: number; // byte offset of the first element
  length: number; // bytes
  dtype: 'float32' | 'float16' | 'bfloat16';
}

let nextId = 0;

export class Graph {
  readonly inputs: Value[] = [];
  readonly outputs: { name: string; value: Value }[] = [];
  readonly nodes: Node[] = [];
  readonly constants: Constant[] = [];
  private scalarCache = new Map<string, Value>();
  /** Ids of the float weights stored as constants (and their float32 casts), see linear(). */
  private readonly constantWeights = new Set<number>();

  constructor(readonly name = 'g') {}

  value(shape: Dim[], dtype: DType = 'float32', name?: string): Value {
    const id = nextId++;
    return { id, name: name ?? `v${id}`, shape, dtype };
  }

  input(name: string, shape: Dim[], dtype: DType = 'float32'): Value {
    const v = this.value(shape, dtype, name);
    this.inputs.push(v);
    return v;
  }

  /** A value of the enclosing graph, read by name from inside a Scan body. */
  capture(outer: Value): Value {
    return { ...outer, captured: true };
  }

  output(name: string, v: Value): Value {
    if (this.outputs.some((o) => o.name === name)) throw new Error(`graph ${this.name}: duplicate output ${name}`);
    const out = this.node('Identity', [v], {}, [v.shape], [v.dtype])[0];
    out.name = name;
    this.outputs.push({ name, value: out });
    return out;
  }

  node(op: string, inputs: (Value | null)[], attrs: Record<string, Attr>, shapes: Dim[][], dtypes?: DType[]): Value[] {
    const outputs = shapes.map((s, i) => this.value(s, dtypes?.[i] ?? 'float32'));
    this.nodes.push({ op, inputs, outputs, attrs });
    return outputs;
  }

  private unary(op: string, x: Value, attrs: Record<string, Attr> = {}): Value {
    return this.node(op, [x], attrs, [x.shape], [x.dtype])[0];
  }

  private binary(op: string, a: Value, b: Value, dtype?: DType): Value {
    return this.node(op, [a, b], {}, [broadcastShapes(a.shape, b.shape, op)], [dtype ?? a.dtype])[0];
  }

  // ---- constants ----------------------------------------------------------
  constant(data: Float32Array | BigInt64Array, shape: number[]): Value {
    const dtype: DType = data instanceof BigInt64Array ? 'int64' : 'float32';
    const value = this.value(shape, dtype);
    this.constants.push({ value, data });
    return value;
  }

  /** A float32 constant read from a file by onnxruntime (half-precision data is widened by a Cast it folds). */
  external(ref: ExternalTensor, shape: number[]): Value {
    const value = this.value(shape, ref.dtype);
    this.constants.push({ value, external: ref });
    const widened = ref.dtype === 'float32' ? value : this.cast(value, 'float32');
    this.constantWeights.add(widened.id);
    return widened;
  }

  scalar(x: number): Value {
    const key = `f${x}`;
    let v = this.scalarCache.get(key);
    if (!v) {
      v = this.constant(Float32Array.of(x), []);
      this.scalarCache.set(key, v);
    }
    return v;
  }

  ints(xs: number[]): Value {
    const key = `i${xs.join(',')}`;
    let v = this.scalarCache.get(key);
    if (!v) {
      v = this.constant(BigInt64Array.from(xs.map((x) => BigInt(x))), [xs.length]);
      this.scalarCache.set(key, v);
    }
    return v;
  }

  // ---- elementwise ----------------------------------------------------------
  add(a: Value, b: Value): Value { return this.binary('Add', a, b); }
  sub(a: Value, b: Value): Value { return this.binary('Sub', a, b); }
  mul(a: Value, b: Value): Value { return this.binary('Mul', a, b); }
  div(a: Value, b: Value): Value { return this.binary('Div', a, b); }
  neg(x: Value): Value { return this.unary('Neg', x); }
  exp(x: Value): Value { return this.unary('Exp', x); }
  log(x: Value): Value { return this.unary('Log', x); }
  sqrt(x: Value): Value { return this.unary('Sqrt', x); }
  sigmoid(x: Value): Value { return this.unary('Sigmoid', x); }
  /**
   * softplus(x) = max(x, 0) + log(1 + exp(−|x|)): onnxruntime's own Softplus kernel is scalar
   * (measured 5.1 of 11.7 ms in a Mamba block's input projections), these four ops vectorise.
   */
  softplus(x: Value): Value {
    return this.add(this.relu(x), this.log(this.add(this.exp(this.neg(this.abs(x))), this.scalar(1))));
  }
  relu(x: Value): Value { return this.unary('Relu', x); }
  abs(x: Value): Value { return this.unary('Abs', x); }
  sign(x: Value): Value { return this.unary('Sign', x); }
  greater(a: Value, b: Value): Value { return this.binary('Greater', a, b, 'bool'); }
  tanh(x: Value): Value { return this.unary('Tanh', x); }
  erf(x: Value): Value { return this.unary('Erf', x); }
  /** SiLU(x) = x * sigmoid(x). */
  silu(x: Value): Value { return this.mul(x, this.sigmoid(x)); }
  /** Exact (erf) GELU, as GPT-NeoX uses. */
  /** GELU (erf form), written as onnxruntime's Gelu fusion expects it: x·0.5·(1 + erf(x/√2)). */
  gelu(x: Value): Value {
    const inner = this.erf(this.div(x, this.scalar(Math.SQRT2)));
    return this.mul(this.mul(x, this.scalar(0.5)), this.add(inner, this.scalar(1)));
  }
  /** x² as Pow(x, 2): the form onnxruntime's LayerNorm / RMSNorm fusions match (x·x is not fused). */
  square(x: Value): Value { return this.binary('Pow', x, this.scalar(2)); }
  where(cond: Value, a: Value, b: Value): Value {
    const shape = broadcastShapes(cond.shape, broadcastShapes(a.shape, b.shape, 'Where'), 'Where');
    return this.node('Where', [cond, a, b], {}, [shape], [a.dtype])[0];
  }
  equal(a: Value, b: Value): Value { return this.binary('Equal', a, b, 'bool'); }
  cast(x: Value, to: DType): Value {
    return this.node('Cast', [x], { to: onnxTypeCode(to) }, [x.shape], [to])[0];
  }

  // ---- linear algebra ---------------------------------------------------------
  /** a [...,M,K] @ b [...,K,N] with numpy broadcasting of the batch dims. */
  matmul(a: Value, b: Value): Value {
    const ka = a.shape[a.shape.length - 1];
    const kb = b.shape[b.shape.length - 2];
    if (!dimsEqual(ka, kb)) throw new Error(`MatMul: inner dims differ: [${a.shape}] @ [${b.shape}]`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'MatMul');
    const shape = [...batch, a.shape[a.shape.length - 2], b.shape[b.shape.length - 1]];
    return this.node('MatMul', [a, b], {}, [shape])[0];
  }

  /**
   * x [...,in] @ Wᵀ for a PyTorch-layout weight W [out,in] (+ bias [out]). For a weight stored in
   * the graph (external()), onnxruntime's FusedMatMul with transB reads W as it is: a Transpose of
   * a constant would be folded into a second, transposed copy before the MatMul packs a third.
   */
  linear(x: Value, w: Value, bias?: Value): Value {
    const y = this.constantWeights.has(w.id) ? this.matmulTransB(x, w) : this.matmul(x, this.transpose(w, [1, 0])); // [...,out]
    return bias ? this.add(y, bias) : y;
  }

  /** x [...,M,K] @ wᵀ for w [N,K], as onnxruntime's contrib FusedMatMul (no autodiff rule: forward-only graphs). */
  private matmulTransB(x: Value, w: Value): Value {
    const [N, K] = w.shape;
    if (!dimsEqual(x.shape[x.shape.length - 1], K)) throw new Error(`FusedMatMul: inner dims differ: [${x.shape}] @ [${w.shape}]ᵀ`);
    const [y] = this.node('FusedMatMul', [x, w], { transA: 0, transB: 1, alpha: { float: 1 } }, [[...x.shape.slice(0, -1), N]]);
    this.nodes[this.nodes.length - 1].domain = 'com.microsoft';
    return y;
  }

  transpose(x: Value, perm: number[]): Value {
    return this.node('Transpose', [x], { perm }, [perm.map((p) => x.shape[p])], [x.dtype])[0];
  }

  // ---- shape ops ----------------------------------------------------------------
  /** ONNX Reshape: spec entries are literal sizes, 0 (copy that input dim) or -1 (infer). */
  reshape(x: Value, spec: number[]): Value {
    const shape: Dim[] = spec.map((s, i) => (s === 0 ? x.shape[i] : s));
    const inferred = shape.indexOf(-1);
    if (inferred >= 0) {
      const known = shape.filter((_, i) => i !== inferred);
      shape[inferred] = divideDims(productDim(x.shape), productDim(known));
    }
    return this.node('Reshape', [x, this.ints(spec)], {}, [shape], [x.dtype])[0];
  }

  /** Reshape to the runtime shape of another value (used by backward rules). */
  reshapeLike(x: Value, like: Value): Value {
    const shapeOf = this.node('Shape', [like], {}, [[like.shape.length]], ['int64'])[0];
    return this.node('Reshape', [x, shapeOf], {}, [like.shape], [x.dtype])[0];
  }

  expandLike(x: Value, like: Value): Value {
    const shapeOf = this.node('Shape', [like], {}, [[like.shape.length]], ['int64'])[0];
    return this.node('Expand', [x, shapeOf], {}, [broadcastShapes(x.shape, like.shape, 'Expand')], [x.dtype])[0];
  }

  unsqueeze(x: Value, axes: number[]): Value {
    const rank = x.shape.length + axes.length;
    const norm = axes.map((a) => (a < 0 ? a + rank : a)).sort((p, q) => p - q);
    const shape = [...x.shape];
    for (const a of norm) shape.splice(a, 0, 1);
    return this.node('Unsqueeze', [x, this.ints(axes)], {}, [shape], [x.dtype])[0];
  }

  squeeze(x: Value, axes: number[]): Value {
    const norm = axes.map((a) => (a < 0 ? a + x.shape.length : a));
    const shape = x.shape.filter((_, i) => !norm.includes(i));
    return this.node('Squeeze', [x, this.ints(axes)], {}, [shape], [x.dtype])[0];
  }

  /**
   * Static slice along one axis; `end` may be negative (from the end) or Infinity.
   * `outDim` names the result's size where symbolic arithmetic cannot (e.g. "T").
   */
  slice(x: Value, axis: number, start: number, end: number, outDim?: Dim): Value {
    const ax = axis < 0 ? axis + x.shape.length : axis;
    const size = x.shape[ax];
    const e = end === Infinity ? 2 ** 62 : end;
    let dim: Dim;
    if (outDim !== undefined) dim = outDim;
    else if (typeof size === 'number') {
      const lo = start < 0 ? size + start : start;
      const hi = end === Infinity ? size : e < 0 ? size + e : Math.min(e, size);
      dim = hi - lo;
    } else if (start >= 0 && e >= 0 && end !== Infinity) dim = e - start;
    else throw new Error(`Slice: give outDim for a symbolic slice of [${x.shape}] on axis ${ax}`);
    const shape = [...x.shape];
    shape[ax] = dim;
    return this.node('Slice', [x, this.ints([start]), this.ints([e]), this.ints([ax])], {}, [shape], [x.dtype])[0];
  }

  /**
   * The slice of x along `axis` that `part` occupied in a concat of `parts` (part = parts[i]), with
   * offsets read at run time: a backward rule's slice where sizes are symbolic (e.g. [past ; T]).
   */
  sliceConcatPart(x: Value, axis: number, parts: Value[], i: number): Value {
    const dim = (v: Value) => this.node('Shape', [v], { start: axis, end: axis + 1 }, [[1]], ['int64'])[0]; // int64 [1]
    const add = (a: Value, b: Value) => this.node('Add', [a, b], {}, [[1]], ['int64'])[0];
    const start = parts.slice(0, i).map(dim).reduce(add, this.ints([0]));
    const end = add(start, dim(parts[i]));
    return this.node('Slice', [x, start, end, this.ints([axis])], {}, [[...x.shape.slice(0, axis), parts[i].shape[axis], ...x.shape.slice(axis + 1)]], [x.dtype])[0];
  }

  concat(xs: Value[], axis: number): Value {
    const ax = axis < 0 ? axis + xs[0].shape.length : axis;
    const shape = [...xs[0].shape];
    shape[ax] = xs.map((x) => x.shape[ax]).reduce((p, q) => addDims(p, q));
    return this.node('Concat', xs, { axis: ax }, [shape], [xs[0].dtype])[0];
  }

  /** Zero padding: pads = [begin_0..begin_r, end_0..end_r] as in ONNX Pad. */
  pad(x: Value, pads: number[]): Value {
    const r = x.shape.length;
    const shape = x.shape.map((d, i) => addDims(addDims(d, pads[i]), pads[i + r]));
    return this.node('Pad', [x, this.ints(pads)], { mode: 'constant' }, [shape], [x.dtype])[0];
  }

  gather(data: Value, indices: Value, axis = 0): Value {
    const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
    return this.node('Gather', [data, indices], { axis }, [shape], [data.dtype])[0];
  }

  // ---- reductions ------------------------------------------------------------
  reduceSum(x: Value, axes: number[], keepdims = true): Value {
    return this.reduce('ReduceSum', x, axes, keepdims);
  }
  reduceMean(x: Value, axes: number[], keepdims = true): Value {
    return this.reduce('ReduceMean', x, axes, keepdims);
  }
  private reduce(op: string, x: Value, axes: number[], keepdims: boolean): Value {
    const norm = axes.map((a) => (a < 0 ? a + x.shape.length : a));
    const shape = keepdims ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
    return this.node(op, [x, this.ints(norm)], { keepdims: keepdims ? 1 : 0 }, [shape], [x.dtype])[0];
  }

  softmax(x: Value, axis = -1): Value {
    return this.unary('Softmax', x, { axis });
  }
}

// ---- symbolic dim arithmetic ------------------------------------------------------

export function dimsEqual(a: Dim, b: Dim): boolean {
  return a === b;
}

export function broadcastShapes(a: Dim[], b: Dim[], op: string): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const da = i < r - a.length ? 1 : a[i - (r - a.length)];
    const db = i < r - b.length ? 1 : b[i - (r - b.length)];
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else if (typeof da === 'string' || typeof db === 'string') out.push(typeof da === 'number' ? da : db); // symbolic: checked at run time
    else throw new Error(`${op}: cannot broadcast [${a}] with [${b}]`);
  }
  return out;
}

function productDim(dims: Dim[]): Dim {
  let num = 1;
  const syms: string[] = [];
  for (const d of dims) typeof d === 'number' ? (num *= d) : syms.push(d);
  if (!syms.length) return num;
  return [...(num !== 1 ? [String(num)] : []), ...syms].join('*');
}

function divideDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a / b;
  if (typeof a === 'string' && typeof b === 'number') {
    const parts = a.split('*');
    const num = parts.filter((p) => /^\d+$/.test(p)).reduce((p, q) => p * Number(q), 1);
    const syms = parts.filter((p) => !/^\d+$/.test(p));
    if (num % b === 0) return productDim([num / b, ...syms]);
  }
  if (typeof a === 'string' && typeof b === 'string') {
    const parts = a.split('*');
    const rm = b.split('*');
    if (rm.every((p) => parts.includes(p))) {
      for (const p of rm) parts.splice(parts.indexOf(p), 1);
      return parts.length ? parts.join('*') : 1;
    }
  }
  return `(${a})/(${b})`;
}

function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (b === 0) return a;
  if (a === 0) return b;
  return `${a}+${b}`;
}

export function onnxTypeCode(t: DType): number {
  return { float32: 1, int64: 7, bool: 9, float16: 10, bfloat16: 16 }[t];
}
