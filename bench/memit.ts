/**
 * npx tsx bench/memit.ts [--edits 100] [--delta-sample 3] [--models mamba-facts,neox-facts,mamba-130m,pythia-160m] [--samples TOKENS] [--json]
 *
 * Seconds per batch of `--edits` MEMIT edits per site (Mamba W_o over the default layer range, W_a and
 * W_g at the default layer; Pythia W_down over the default range), on the demo models and on
 * random-weight checkpoints with the shapes of mamba-130m and pythia-160m (bench/configs.ts; they get
 * the bundled GPT-NeoX-20B tokenizer so that CounterFact prompts can be tokenised). A batch costs
 *   n × (one δ optimisation, ROME's v*: independent per request)  +  the batch phase (keys,
 *   residuals and one least-squares update per layer, for all n requests together).
 * The δ cost is measured per request on `--delta-sample` requests at the paper's settings (21 context
 * templates, ≤ 20 steps); the batch phase is measured on the full batch, with δs from a 1-step
 * optimisation (the batch phase does not depend on their values). The printed batch seconds are
 * n × (δ seconds per request) + batch-phase seconds, and the ratio is against sequential ROME over
 * the same n requests, n × (ROME seconds per edit, measured on the same sample) in the same run.
 * Statistics C come from `--samples` tokens into a temporary cache (timed separately, not in the batch).
 * Wall and process CPU are both printed (a shared machine: CPU is the steadier number).
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { arg, clock } from './clock';
import { MODELS, ROOT } from './configs';
import { checkpointDir } from './checkpoints';
import { Model } from '../src/runtime/model';
import { loadCounterFact, knownRecords, editRequestOf, CounterFactRecord } from '../src/data/counterfact';
import { defaultLayer, editSite, EDIT_MATRICES, normalizeRequest, rome, secondMoments, contextTemplates } from '../src/methods/rome';
import { defaultLayers, memit, optimizeDeltas, residualTarget, writesResidual } from '../src/methods/memit';

const args = process.argv.slice(2);
const N = Number(arg('--edits', '100'));
const SAMPLE = Number(arg('--delta-sample', '3'));
const NAMES = arg('--models', 'mamba-facts,neox-facts,mamba-130m,pythia-160m').split(',');
const SAMPLES = Number(arg('--samples', '5000'));
const JSON_OUT = args.includes('--json');
const f = (x: number) => x.toFixed(2);

/** A random-weight bench checkpoint has no tokenizer: give it the bundled GPT-NeoX-20B one. */
function withTokenizer(dir: string): string {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) fs.copyFileSync(path.join(ROOT, 'data', 'gpt_neox_20b_tokenizer', 'tokenizer.json'), file);
  return dir;
}

async function requestsFor(model: Model, trained: boolean): Promise<CounterFactRecord[]> {
  const all = loadCounterFact();
  // Trained demo models edit facts they know; random weights know none, any record times the same.
  const recs = trained ? await knownRecords(model, all, { limit: N }) : all.slice(0, N);
  if (recs.length < N) throw new Error(`${model.name}: only ${recs.length} records for --edits ${N}`);
  return recs;
}

async function main(): Promise<void> {
  const log = (s: string) => (JSON_OUT ? undefined : console.error(s));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-memit-bench-'));
  log(`memit bench: ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${N} edits per batch, δ timed on ${SAMPLE} requests`);
  const results: Record<string, unknown>[] = [];
  try {
    for (const name of NAMES) {
      const bm = MODELS.find((m) => m.name === name);
      if (!bm) throw new Error(`unknown bench model "${name}" (bench/configs.ts)`);
      const model = await Model.load(withTokenizer(checkpointDir(bm, log)));
      const recs = await requestsFor(model, !!bm.dir);
      const requests = recs.map(editRequestOf);
      const normalized = requests.map((r) => normalizeRequest(model, r));
      const templates = await contextTemplates(model);
      for (const matrix of EDIT_MATRICES[model.arch]) {
        const layers = writesResidual(matrix) ? defaultLayers(model) : [defaultLayer(model)];
        const sites = layers.map((l) => editSite(model, l, matrix));
        let t = clock();
        const stats = await secondMoments(model, sites, { samples: SAMPLES, maxLength: 256, cache, progress: false });
        const statsTime = t();
        const at = writesResidual(matrix) ? residualTarget(model, layers[layers.length - 1]) : sites[0];
        await optimizeDeltas(model, normalized.slice(0, 1), at, templates, { steps: 2 }); // warm-up: compile the shapes
        t = clock();
        await optimizeDeltas(model, normalized.slice(0, SAMPLE), at, templates);
        const delta = t();
        t = clock();
        for (const r of requests.slice(0, SAMPLE)) await rome(model, r, { matrix, layer: layers[layers.length - 1], stats: stats[stats.length - 1], templates });
        const romeTime = t();
        const quick = await optimizeDeltas(model, normalized, at, templates, { steps: 1 });
        t = clock();
        await memit(model, requests, { matrix, layers, stats, templates, deltas: quick });
        const batch = t();
        const perDelta = { wall: delta.wall / SAMPLE, cpu: delta.cpu / SAMPLE };
        const perRome = { wall: romeTime.wall / SAMPLE, cpu: romeTime.cpu / SAMPLE };
        const row = {
          model: name, matrix, layers: layers.join(','), edits: N, statsSamples: SAMPLES, statsSeconds: statsTime.wall,
          deltaSecondsPerRequest: perDelta.wall, deltaCpuPerRequest: perDelta.cpu,
          batchPhaseSeconds: batch.wall, batchPhaseCpu: batch.cpu,
          secondsPerBatch: N * perDelta.wall + batch.wall, cpuSecondsPerBatch: N * perDelta.cpu + batch.cpu,
          romeSecondsPerEdit: perRome.wall, sequentialRomeSeconds: N * perRome.wall,
          memitOverSequentialRomeCpu: (N * perDelta.cpu + batch.cpu) / (N * perRome.cpu), load: os.loadavg()[0],
        };
        results.push(row);
        log(`${name} ${matrix}@L${row.layers}: ${f(row.secondsPerBatch)} s per ${N}-edit batch (${f(row.cpuSecondsPerBatch)} s CPU) = ${N} × ${f(perDelta.wall)} s δ + ${f(batch.wall)} s batch phase; ` +
          `sequential ROME ${f(row.sequentialRomeSeconds)} s (${f(perRome.wall)} s/edit); MEMIT/ROME CPU ratio ${f(row.memitOverSequentialRomeCpu)}; C in ${f(statsTime.wall)} s`);
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
