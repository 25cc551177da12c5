/**
 * Issue 3's sweep benchmark: the full residual-patching grid (every layer ×
 * every position) of one 12-token prompt on mamba-facts, each run patching
 * the clean residual (resid_pre) into a corrupted prompt, via sweep() with
 * and without `prefix`. Compared with the same number of plain forward
 * passes done one by one, estimated from a timed sample of them.
 */
import path from 'path';
import { Model } from '../src/runtime/model';
import { sweep, autoBatchSize, Row } from '../src/runtime/sweep';
import type { InterventionSpec } from '../src/runtime/interventions';
import type { Tensor } from '../src/runtime/tensor';
import { mambaStateAt, resumeCacheNames } from '../src/runtime/resume';
import { argmax, probOf } from '../src/runtime/logits';
import { ROOT } from './configs';

export interface SweepBench {
  runs: number;
  layers: number;
  tokens: number;
  batchSize: number;
  sweepMs: number;
  prefixMs: number;
  /** With prefix and resumption mid-sequence from the cached recurrent state (Mamba). */
  resumedMs: number;
  oneByOneMsEach: number;
  oneByOneSample: number;
  /** runs × one plain forward: an extrapolation from the sample. */
  oneByOneMsEstimated: number;
}

export const CLEAN = 'The Eiffel Tower is located in the capital city of';
export const CORRUPT = 'The Colosseum is located in the capital city of';

export async function sweepBench(log: (s: string) => void, sample = 12): Promise<SweepBench> {
  const model = await Model.load(path.join(ROOT, 'data', 'models', 'mamba-facts'));
  const clean = model.encode(CLEAN);
  const corrupt = model.encode(CORRUPT);
  if (clean.length !== 12 || corrupt.length !== 12) throw new Error(`sweep bench prompts must be 12 tokens (got ${clean.length}, ${corrupt.length})`);
  const L = model.nLayers;
  const names = [...Array(L).keys()].map((l) => `layers.${l}.resid_pre`);
  const cleanRun = await model.runWithCache([clean], names, { logits: 'last' });
  const corruptRun = await model.runWithCache([corrupt], resumeCacheNames(model), { logits: 'last' });
  const target = argmax(cleanRun.logits!.data);
  const grid: Row[] = [];
  for (let layer = 0; layer < L; layer++) for (let position = 0; position < clean.length; position++) grid.push({ layer, position });
  const interventions = (r: Row): InterventionSpec[] => [
    { hook: `layers.${r.layer}.resid_pre`, positions: [r.position as number], op: 'replace', source: { cache: 'clean' } },
  ];
  const metric = (lg: Float32Array) => ({ p: probOf(lg, target) });
  const base = { input: corrupt, interventions, metric, caches: { clean: cleanRun.cache } };
  const prefix = { startLayer: (r: Row) => r.layer as number, resid: (l: number): Tensor => corruptRun.cache.get(names[l]) };
  const resume = {
    ...prefix,
    startPosition: (r: Row) => r.position as number,
    state: (l: number, p: number) => mambaStateAt(model, corruptRun.cache, l, p),
  };

  // Warm-up: compile every graph both paths use (a few rows, all start layers), and a plain forward.
  const warm = grid.filter((r) => (r.position as number) < 2);
  await sweep(model, warm, base);
  await sweep(model, warm, { ...base, prefix });
  await sweep(model, grid.filter((r) => r.layer === 0), { ...base, prefix: resume });
  await model.run([corrupt], { logits: 'last' });

  log(`  sweep: ${grid.length} runs (${L} layers × ${clean.length} positions) on mamba-facts ...`);
  let t = performance.now();
  const plain = await sweep(model, grid, base);
  const sweepMs = performance.now() - t;
  t = performance.now();
  const skipped = await sweep(model, grid, { ...base, prefix });
  const prefixMs = performance.now() - t;
  t = performance.now();
  const resumed = await sweep(model, grid, { ...base, prefix: resume });
  const resumedMs = performance.now() - t;
  const a = plain.array('p') as number[];
  for (const other of [skipped, resumed]) {
    const b = other.array('p') as number[];
    const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    if (worst > 1e-4) throw new Error(`sweep bench: skipping changed the results by ${worst}`);
  }

  t = performance.now();
  for (let i = 0; i < sample; i++) await model.run([corrupt], { logits: 'last' });
  const each = (performance.now() - t) / sample;
  return {
    runs: grid.length, layers: L, tokens: clean.length, batchSize: autoBatchSize(model, clean.length),
    sweepMs, prefixMs, resumedMs, oneByOneMsEach: each, oneByOneSample: sample, oneByOneMsEstimated: each * grid.length,
  };
}
