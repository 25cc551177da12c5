/**
 * Every reverse-mode rule against central finite differences, op by op, on
 * small random inputs (each op alone, so no rule hides behind another).
 */
import { describe, expect, it } from 'vitest';
import { Graph, Value } from '../../src/graph/ir';
import { backward } from '../../src/graph/autodiff';
import { Compiled } from '../../src/graph/session';
import { selectiveScan } from '../../src/graph/selective-scan';
import { Tensor } from '../../src/runtime/tensor';
import { rng } from '../../src/runtime/generate';
import { expectFiniteDifference } from '../support/fd-check';

type Build = (g: Graph, xs: Value[]) => Value;

interface Case {
  name: string;
  shapes: number[][];
  build: Build;
  /** Keep inputs in a range where the op is smooth (e.g. positive for log/sqrt). */
  positive?: number[];
}

const cases: Case[] = [
  { name: 'Add (broadcast)', shapes: [[2, 3, 4], [4]], build: (g, [a, b]) => g.add(a, b) },
  { name: 'Sub (broadcast)', shapes: [[2, 3, 4], [3, 1]], build: (g, [a, b]) => g.sub(a, b) },
  { name: 'Mul (broadcast)', shapes: [[2, 3, 4], [1, 3, 4]], build: (g, [a, b]) => g.mul(a, b) },
  { name: 'Div', shapes: [[3, 4], [3, 4]], build: (g, [a, b]) => g.div(a, b), positive: [1] },
  { name: 'Neg', shapes: [[5]], build: (g, [a]) => g.neg(a) },
  { name: 'Exp', shapes: [[5]], build: (g, [a]) => g.exp(a) },
  { name: 'Log', shapes: [[5]], build: (g, [a]) => g.log(a), positive: [0] },
  { name: 'Sqrt', shapes: [[5]], build: (g, [a]) => g.sqrt(a), positive: [0] },
  { name: 'Sigmoid', shapes: [[5]], build: (g, [a]) => g.sigmoid(a) },
  { name: 'Tanh', shapes: [[5]], build: (g, [a]) => g.tanh(a) },
  { name: 'Softplus', shapes: [[6]], build: (g, [a]) => g.softplus(a) },
  { name: 'Relu', shapes: [[6]], build: (g, [a]) => g.relu(a) },
  { name: 'Abs', shapes: [[6]], build: (g, [a]) => g.abs(a) },
  { name: 'Pow (square)', shapes: [[6]], build: (g, [a]) => g.square(a) },
  { name: 'Erf', shapes: [[5]], build: (g, [a]) => g.erf(a) },
  { name: 'MatMul (batched)', shapes: [[2, 3, 4], [2, 4, 5]], build: (g, [a, b]) => g.matmul(a, b) },
  { name: 'MatMul (weight)', shapes: [[2, 3, 4], [4, 5]], build: (g, [a, b]) => g.matmul(a, b) },
  { name: 'linear (transposed weight)', shapes: [[2, 3, 4], [5, 4], [5]], build: (g, [a, w, b]) => g.linear(a, w, b) },
  { name: 'Transpose', shapes: [[2, 3, 4]], build: (g, [a]) => g.transpose(a, [2, 0, 1]) },
  { name: 'Reshape', shapes: [[2, 3, 4]], build: (g, [a]) => g.reshape(a, [0, -1]) },
  { name: 'Unsqueeze/Squeeze', shapes: [[3, 4]], build: (g, [a]) => g.squeeze(g.mul(g.unsqueeze(a, [1]), g.scalar(2)), [1]) },
  { name: 'Slice (negative end)', shapes: [[2, 6, 3]], build: (g, [a]) => g.slice(a, 1, 1, -2) },
  { name: 'Slice (to the end)', shapes: [[2, 6, 3]], build: (g, [a]) => g.slice(a, 1, 2, Infinity) },
  { name: 'Concat', shapes: [[2, 2, 3], [2, 4, 3]], build: (g, [a, b]) => g.concat([a, b], 1) },
  { name: 'Pad', shapes: [[2, 3]], build: (g, [a]) => g.pad(a, [0, 2, 1, 1]) },
  { name: 'ReduceSum', shapes: [[2, 3, 4]], build: (g, [a]) => g.reduceSum(a, [1], false) },
  { name: 'ReduceMean', shapes: [[2, 3, 4]], build: (g, [a]) => g.reduceMean(a, [-1], true) },
  { name: 'Softmax', shapes: [[2, 5]], build: (g, [a]) => g.softmax(a, -1) },
  { name: 'Where', shapes: [[4], [4]], build: (g, [a, b]) => g.where(g.cast(g.constant(new Float32Array([1, 0, 1, 0]), [4]), 'bool'), a, b) },
  { name: 'GELU', shapes: [[6]], build: (g, [a]) => g.gelu(a) },
  {
    name: 'selective scan',
    shapes: [[3, 5, 3], [3, 4], [3, 5, 3], [3, 5, 4], [3, 5, 4], [3, 3, 4]],
    positive: [0],
    build: (g, [dt, A, u, B, C, h0]) => {
      const r = selectiveScan(g, g.mul(dt, g.scalar(0.3)), g.neg(g.exp(A)), u, B, C, h0);
      return g.add(r.y, g.unsqueeze(g.reduceSum(r.last, [2], false), [1])); // [B,T,E] + [B,1,E]: both outputs
    },
  },
];

/** The output shape, found by running the forward graph (symbolic dims resolve at run time). */
async function outputShape(c: Case, xs: Float32Array[]): Promise<number[]> {
  const g = new Graph('shape');
  g.output('y', c.build(g, c.shapes.map((s, i) => g.input(`x${i}`, s))));
  const feeds: Record<string, Tensor> = {};
  xs.forEach((x, i) => (feeds[`x${i}`] = new Tensor(x, c.shapes[i])));
  return (await (await Compiled.create(g)).run(feeds)).y.shape;
}

async function evaluate(c: Case, xs: Float32Array[], r: Tensor): Promise<{ f: number; grads: Float32Array[] }> {
  const g = new Graph('t');
  const inputs = c.shapes.map((s, i) => g.input(`x${i}`, s));
  const y = c.build(g, inputs);
  const seed = g.input('seed', r.shape);
  const grads = backward(g, [y], [seed], inputs);
  g.output('y', y);
  grads.forEach((gv, i) => g.output(`g${i}`, gv ?? g.mul(inputs[i], g.scalar(0))));
  const compiled = await Compiled.create(g);
  const feeds: Record<string, Tensor> = { seed: r };
  xs.forEach((x, i) => (feeds[`x${i}`] = new Tensor(x, c.shapes[i])));
  const out = await compiled.run(feeds);
  const f = out.y.data.reduce((s, v, i) => s + v * r.data[i], 0);
  return { f, grads: c.shapes.map((_, i) => out[`g${i}`].data) };
}

describe('reverse-mode rules equal finite differences', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const random = rng(c.name.length * 7919);
      const xs = c.shapes.map((s, i) => {
        const n = s.reduce((a, b) => a * b, 1);
        return Float32Array.from({ length: n }, () => (c.positive?.includes(i) ? 0.5 + random() : 2 * random() - 1));
      });
      const shape = await outputShape(c, xs);
      const n = shape.reduce((a, b) => a * b, 1);
      const r = new Tensor(Float32Array.from({ length: n }, () => 2 * random() - 1), shape);
      const { grads } = await evaluate(c, xs, r);
      const eps = 1e-2;
      for (let i = 0; i < xs.length; i++) {
        const dir = Float32Array.from(xs[i], () => 2 * random() - 1);
        const shifted = (s: number) => xs.map((x, k) => (k === i ? x.map((v, j) => v + s * dir[j]) : x));
        const fd = ((await evaluate(c, shifted(eps), r)).f - (await evaluate(c, shifted(-eps), r)).f) / (2 * eps);
        const an = grads[i].reduce((s, v, j) => s + v * dir[j], 0);
        expectFiniteDifference(an, fd, `${c.name} input ${i}`);
      }
    });
  }
});
