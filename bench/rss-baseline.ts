/**
 * The peak RSS of a process that loads the library and runs the smallest
 * model once (Node + V8 + onnxruntime's own footprint): context for the
 * rss_over_weights of small models, which that fixed cost dominates.
 *   tsx bench/rss-baseline.ts  → {"maxRssBytes": n}
 */
import path from 'path';
import { Model } from '../src/runtime/model';
import { ROOT } from './configs';

async function main(): Promise<void> {
  const model = await Model.load(path.join(ROOT, 'test', 'fixtures', 'tiny-mamba'));
  await model.logits([[1, 2, 3]]);
  process.stdout.write(JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, weightBytes: model.weightBytes }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`rss-baseline: ${(e as Error).stack}\n`);
  process.exit(1);
});
