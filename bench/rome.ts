/**
 * npx tsx bench/rome.ts [--edits N] [--models mamba-facts,neox-facts] [--samples TOKENS] [--json]
 *
 * ROME on the demo models: seconds to compute the key statistics C (cold, and read back from the
 * disk cache), seconds per edit with the statistics cached (the paper's v* settings: 21 context
 * templates, ≤ 20 Adam steps; and the notebook's CI settings: 7 templates, 10 steps), and seconds
 * per evaluated CounterFact case (26 teacher-forced continuations in one batch), on the first N known
 * records, with their ES/PS/NS. Wall and process CPU are both printed: this machine is shared, CPU
 * time is the steadier number. The cache goes to a temporary directory (never the user's).
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { arg, clock } from './clock';
import { Model } from '../src/runtime/model';
import { knownRecords, loadCounterFact, editRequestOf } from '../src/data/counterfact';
import { clearStatsMemory, defaultLayer, editSite, rome, RomeOptions, scoreCase, secondMoment, summarize, CaseScores } from '../src/methods/rome';

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const N = Number(arg('--edits', '5'));
const MODELS = arg('--models', 'mamba-facts,neox-facts').split(',');
const SAMPLES = Number(arg('--samples', '10000'));
const JSON_OUT = args.includes('--json');

const f = (x: number) => x.toFixed(2);

async function main(): Promise<void> {
  const log = (s: string) => (JSON_OUT ? undefined : console.error(s));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-rome-bench-'));
  log(`rome bench: ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ORT threads ${process.env.FACTLENS_THREADS ?? 'default'}`);
  const results: Record<string, unknown>[] = [];
  try {
    for (const name of MODELS) {
      const model = await Model.load(path.join(ROOT, 'data', 'models', name));
      const layer = defaultLayer(model);
      const site = editSite(model, layer);
      const stats = { samples: SAMPLES, maxLength: 256, cache, progress: false };
      let t = clock();
      await secondMoment(model, site, stats);
      const cold = t();
      clearStatsMemory();
      t = clock();
      const C = await secondMoment(model, site, stats);
      const warm = t();
      log(`${name} ${site.matrix}@L${layer}: C [${C.dim}×${C.dim}] from ${SAMPLES} tokens in ${f(cold.wall)} s wall (${f(cold.cpu)} s CPU); read from cache in ${f(warm.wall)} s`);
      const recs = await knownRecords(model, loadCounterFact(), { limit: N });
      for (const [setting, opts] of [['paper', {}], ['ci', { templates: { lengths: [[5, 3], [10, 3]] }, steps: 10 }]] as Array<[string, RomeOptions]>) {
        // One warm-up edit (compiles the graphs for the shapes, samples the templates).
        await rome(model, editRequestOf(recs[0]), { ...opts, layer, stats: C });
        let editWall = 0, editCpu = 0, evalWall = 0, evalCpu = 0, steps = 0;
        const scores: CaseScores[] = [];
        for (const r of recs) {
          t = clock();
          const e = await rome(model, editRequestOf(r), { ...opts, layer, stats: C });
          const te = t();
          t = clock();
          scores.push(await scoreCase(e.model, r));
          const ts = t();
          editWall += te.wall; editCpu += te.cpu; evalWall += ts.wall; evalCpu += ts.cpu;
          steps += e.diagnostics.trace.length;
        }
        const s = summarize(scores);
        const row = {
          model: name, site: `${site.matrix}@L${layer}`, setting, edits: recs.length, statsSamples: SAMPLES, statsColdSeconds: cold.wall, statsCacheSeconds: warm.wall,
          secondsPerEdit: editWall / recs.length, cpuSecondsPerEdit: editCpu / recs.length, stepsPerEdit: steps / recs.length,
          secondsPerCase: evalWall / recs.length, cpuSecondsPerCase: evalCpu / recs.length, ES: s.ES, PS: s.PS, NS: s.NS, S: s.S, load: os.loadavg()[0],
        };
        results.push(row);
        log(`  ${setting}: ${f(row.secondsPerEdit)} s/edit wall (${f(row.cpuSecondsPerEdit)} CPU, ${f(row.stepsPerEdit)} steps), ${f(row.secondsPerCase)} s/case eval (${f(row.cpuSecondsPerCase)} CPU); ES ${f(s.ES)} PS ${f(s.PS)} NS ${f(s.NS)} S ${f(s.S)} over ${recs.length} records`);
      }
    }
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
  if (JSON_OUT) console.log(JSON.stringify(results));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
