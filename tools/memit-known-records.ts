/**
 * npx tsx tools/memit-known-records.ts [--models mamba-facts,neox-facts] [--records N] [--rome] [--paper]
 *
 * The scaling run on the first N known records of the bundled CounterFact 500 (default: all of them,
 * 382 for mamba-facts, 430 for neox-facts): MEMIT and EMMET at 1, 10, 100 and N records at once (each
 * record's δ optimised once, shared across batch sizes); with --rome also sequential ROME over batches of
 * 10 and 100. v* at the notebooks' CI settings (5 context templates, 8 steps) unless --paper. Prints one
 * JSON row per (model, method, batch size) to stdout, progress to stderr.
 */
import path from 'path';
import { Model } from '../src/runtime/model';
import { knownRecords, loadCounterFact } from '../src/data/counterfact';
import { scalingCurve, ScalingRow } from '../src/methods/memit';
import { arg } from '../bench/clock';

const ROOT = path.join(__dirname, '..');
const NAMES = arg('--models', 'mamba-facts,neox-facts').split(',');
const VALUE = process.argv.includes('--paper') ? {} : { templates: { lengths: [[5, 2], [10, 2]] as [number, number][] }, steps: 8 };
const STATS = { samples: 20_000, maxLength: 256, progress: false };

async function main(): Promise<void> {
  for (const name of NAMES) {
    const model = await Model.load(path.join(ROOT, 'data', 'models', name));
    const all = await knownRecords(model, loadCounterFact());
    const known = all.slice(0, Number(arg('--records', String(all.length))));
    const print = (rows: ScalingRow[]) => rows.forEach((r) => console.log(JSON.stringify({ ...r, known: all.length })));
    const t0 = Date.now();
    const sizes = [...new Set([1, 10, 100, known.length])].filter((b) => b <= known.length);
    print((await scalingCurve(model, known, { ...VALUE, batchSizes: sizes, methods: ['memit', 'emmet'], stats: STATS })).rows);
    if (process.argv.includes('--rome')) print((await scalingCurve(model, known.slice(0, 100), { ...VALUE, batchSizes: [10, 100].filter((b) => b <= known.length), methods: ['rome-sequential'], stats: STATS })).rows);
    console.error(`${name}: ${((Date.now() - t0) / 60000).toFixed(1)} min`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
