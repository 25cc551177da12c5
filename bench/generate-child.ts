/**
 * Greedy generation throughput of one model at one batch size, in its own process: load (float32
 * weights), one short warm-up generation (compiles the decode session), then timed generations of
 * NEW tokens for B × 16-token prompts until the budget is spent. Prints one JSON line on stdout.
 *   tsx bench/generate-child.ts DIR BATCH NEW BUDGET_MS
 */
import { Model } from '../src/runtime/model';
import { generate } from '../src/runtime/generate';
import { benchIds, TOKENS } from './configs';

export interface GenerateChildResult {
  ms: number[]; // every timed generation (prompt read + NEW tokens per row)
  weightBytes: number;
  /** Row 0's generated tokens (to compare with transformers' greedy tokens). */
  tokens: number[];
}

async function main(): Promise<void> {
  const [dir, b, n, budget] = process.argv.slice(2);
  const B = Number(b);
  const maxNewTokens = Number(n);
  const model = await Model.load(dir);
  const ids = benchIds(B, TOKENS, model.config.vocabSize);
  await generate(model, ids.slice(0, 1), { maxNewTokens: 2, stopAtEos: false }); // warm-up: compiles (shapes are symbolic in B)
  const ms: number[] = [];
  let tokens: number[] = [];
  const start = performance.now();
  while (ms.length < 1 || (performance.now() - start < Number(budget) && ms.length < 20)) {
    const s = performance.now();
    const gen = await generate(model, ids, { maxNewTokens, stopAtEos: false });
    ms.push(performance.now() - s);
    tokens = gen.tokens[0];
  }
  const res: GenerateChildResult = { ms, weightBytes: model.weightBytes, tokens };
  process.stdout.write(JSON.stringify(res) + '\n');
}

main().catch((e) => {
  process.stderr.write(`generate-child: ${(e as Error).stack}\n`);
  process.exit(1);
});
