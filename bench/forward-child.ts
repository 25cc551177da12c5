/**
 * One model, one batch size, in its own process (so peak RSS belongs to this
 * model alone): load, one warm-up forward of one row (compiles the stage graphs), then
 * timed forwards of B × T tokens with logits at every position, as
 * transformers computes them. Prints one JSON line on stdout.
 *   tsx bench/forward-child.ts DIR BATCH TOKENS BUDGET_MS [packed]
 */
import { Model } from '../src/runtime/model';
import { benchIds } from './configs';

export interface ChildResult {
  ms: number[]; // every timed forward
  loadMs: number;
  firstMs: number; // warm-up forward (one row) incl. graph compilation
  maxRssBytes: number;
  weightBytes: number;
  /** Row 0's logits at its last position, first 256 entries (to compare engines). */
  probe: number[];
}

async function main(): Promise<void> {
  const [dir, b, t, budget, mode] = process.argv.slice(2);
  const B = Number(b);
  const T = Number(t);
  const t0 = performance.now();
  const model = await Model.load(dir, { packed: mode === 'packed' });
  const loadMs = performance.now() - t0;
  const ids = benchIds(B, T, model.config.vocabSize);
  const batch = model.batch(ids);
  const t1 = performance.now();
  await model.logits(model.batch(ids.slice(0, 1))); // warm-up: compiles the stage graphs (shapes are symbolic in B)
  const firstMs = performance.now() - t1;
  const ms: number[] = [];
  let probe: number[] = [];
  const start = performance.now();
  while (ms.length < 1 || (performance.now() - start < Number(budget) && ms.length < 50)) {
    const s = performance.now();
    const logits = await model.logits(batch); // [B,T,V]
    ms.push(performance.now() - s);
    const V = logits.shape[2];
    if (!probe.length) probe = Array.from(logits.data.subarray((T - 1) * V, (T - 1) * V + 256));
  }
  const res: ChildResult = { ms, loadMs, firstMs, maxRssBytes: process.resourceUsage().maxRSS * 1024, weightBytes: model.weightBytes, probe };
  process.stdout.write(JSON.stringify(res) + '\n');
}

main().catch((e) => {
  process.stderr.write(`forward-child: ${(e as Error).stack}\n`);
  process.exit(1);
});
