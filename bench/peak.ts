/**
 * The ONNX Runtime matmul peak of this machine, measured in the same run as
 * the models: one big MatMul graph built with the project's own IR, the
 * weight a graph input in PyTorch [out,in] layout fed through g.linear
 * exactly as the model stages do (so ORT sees the same Transpose+MatMul).
 */
import { Graph } from '../src/graph/ir';
import { Compiled } from '../src/graph/session';
import { Tensor } from '../src/runtime/tensor';

export interface Peak {
  gflops: number;
  shape: string;
}

async function timeGraph(M: number, K: number, N: number, linear: boolean, budgetMs: number): Promise<number> {
  const g = new Graph(linear ? 'peak-linear' : 'peak-matmul');
  const x = g.input('x', [M, K]); // [M,K]
  const w = g.input('w', linear ? [N, K] : [K, N]); // [N,K] like a PyTorch weight, or [K,N]
  g.output('y', linear ? g.linear(x, w) : g.matmul(x, w)); // [M,N]
  const c = await Compiled.create(g);
  const fill = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const feeds = { x: new Tensor(fill(M * K), [M, K]), w: new Tensor(fill(K * N), linear ? [N, K] : [K, N]) };
  await c.run(feeds); // warm-up
  let best = Infinity;
  const t0 = performance.now();
  for (let i = 0; i < 3 || performance.now() - t0 < budgetMs; i++) {
    const s = performance.now();
    await c.run(feeds);
    best = Math.min(best, performance.now() - s);
    if (i >= 20) break;
  }
  await c.release();
  return (2 * M * K * N) / (best / 1000) / 1e9;
}

/** Best GFLOP/s of a [512,2048]×[2048,2048] product (batch-32 × 16-token rows), linear and plain layout. */
export async function measurePeak(budgetMs = 1500): Promise<Peak & { linear: number; plain: number }> {
  const [M, K, N] = [512, 2048, 2048];
  const linear = await timeGraph(M, K, N, true, budgetMs);
  const plain = await timeGraph(M, K, N, false, budgetMs);
  return { gflops: Math.max(linear, plain), shape: `[${M},${K}]x[${K},${N}]`, linear, plain };
}
