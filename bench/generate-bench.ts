/**
 * The bench's generation rows: greedy tokens/s of `generate` (whole-stack decoder) on random-weight
 * mamba-130m and pythia-160m shapes at batch 1 and 32, each in its own process, next to
 * transformers' `generate` with its cache, and the batch-1 bound from the memory bandwidth measured
 * in this run (weight bytes read per token / bytes copied per second).
 */
import { openCheckpoint } from '../src/io';
import { copyBandwidth } from './bandwidth';
import { checkpointDir } from './checkpoints';
import { BATCHES, benchIds, MODELS, TOKENS } from './configs';
import type { GenerateChildResult } from './generate-child';
import { lastJson, min, run, TSX } from './proc';
import { torchGenerate } from './torch';

export const GENERATE_MODELS = ['mamba-130m', 'pythia-160m'];
/** New tokens per row in each timed generation (after a 16-token prompt). */
export const NEW_TOKENS = 32;

export interface GenerateRow {
  kind: 'generate';
  model: string;
  batch: number;
  tokPerSec: number; // new tokens of all rows per second, best run (prompt read included)
  torchTokPerSec?: number;
  boundTokPerSec: number; // bandwidth / weight bytes: one read of every weight per step
  bandwidthGBs: number;
  /** Row 0's greedy tokens equal transformers' (random weights: a near-tie may flip one). */
  tokensAgree?: boolean;
}

export async function generateBench(models: string[], python: string | null, budgetMs: number, log: (s: string) => void): Promise<GenerateRow[]> {
  const bandwidth = copyBandwidth(); // bytes/s
  log(`  memory bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s (256 MiB Float32Array copy, best of 5)`);
  const rows: GenerateRow[] = [];
  for (const name of models) {
    const m = MODELS.find((x) => x.name === name)!;
    const dir = checkpointDir(m, log);
    const ckpt = openCheckpoint(dir);
    const vocab = ckpt.config.vocabSize;
    ckpt.close();
    const batches = Object.fromEntries(BATCHES.map((B) => [B, benchIds(B, TOKENS, vocab)]));
    let torch: Awaited<ReturnType<typeof torchGenerate>> = [];
    if (python) {
      log(`${name}: transformers generate ...`);
      try {
        torch = await torchGenerate(python, dir, batches, NEW_TOKENS, budgetMs);
      } catch (e) {
        log(`  ${(e as Error).message}`);
      }
    }
    for (const B of BATCHES) {
      log(`${name}: generate, batch ${B} ...`);
      const r = lastJson<GenerateChildResult>(await run(TSX, ['bench/generate-child.ts', dir, String(B), String(NEW_TOKENS), String(budgetMs)]), `${name} generate batch ${B}`);
      const t = torch.find((x) => x.batch === B);
      rows.push({
        kind: 'generate', model: name, batch: B, tokPerSec: (B * NEW_TOKENS) / (min(r.ms) / 1000),
        ...(t ? { torchTokPerSec: (B * NEW_TOKENS) / (min(t.ms) / 1000), tokensAgree: t.tokens.join() === r.tokens.join() } : {}),
        boundTokPerSec: bandwidth / r.weightBytes, bandwidthGBs: bandwidth / 1e9,
      });
    }
  }
  return rows;
}

/** The readable table: tok/s, batch 1 as a fraction of the bound, vs transformers, batch 32 over batch 1. */
export function generateTable(rows: GenerateRow[]): string {
  const head = 'model        batch   tok/s  of bound  transformers tok/s  ours/tf  b32/b1  tokens=tf';
  const lines = rows.map((r) => {
    const one = rows.find((x) => x.model === r.model && x.batch === 1);
    const cells = [
      r.model.padEnd(12), String(r.batch).padStart(5), r.tokPerSec.toFixed(1).padStart(7),
      (r.batch === 1 ? `${((100 * r.tokPerSec) / r.boundTokPerSec).toFixed(0)}%` : '').padStart(9),
      (r.torchTokPerSec?.toFixed(1) ?? '-').padStart(19), (r.torchTokPerSec ? `${(r.tokPerSec / r.torchTokPerSec).toFixed(2)}x` : '-').padStart(8),
      (r.batch !== 1 && one ? `${(r.tokPerSec / one.tokPerSec).toFixed(1)}x` : '').padStart(7), String(r.tokensAgree ?? '-').padStart(10),
    ];
    return cells.join(' ');
  });
  return [head, ...lines].join('\n');
}
