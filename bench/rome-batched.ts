/**
 * npx tsx bench/rome-batched.ts [--records N] [--models mamba-facts,neox-facts] [--paper] [--json]
 *
 * ROME's v* for N known CounterFact records (default 20) at each demo model's default edit site,
 * optimised one request at a time (optimizeValue) and batched over the requests (optimizeValues,
 * default token budget), in the same run: seconds per edit (wall and process CPU) and their ratio.
 * v* at the notebooks' CI settings (7 context templates, 10 steps) unless --paper (21, 20). The
 * largest |Δv*| / max |δ| between the two is printed as a check that both did the same work.
 */
import os from 'os';
import path from 'path';
import { arg, clock } from './clock';
import { Model } from '../src/runtime/model';
import { editRequestOf, knownRecords, loadCounterFact } from '../src/data/counterfact';
import { contextTemplates, defaultLayer, editSite, normalizeRequest, optimizeValue, optimizeValues, ValueOptions, ValueResult } from '../src/methods/rome';

const ROOT = path.resolve(__dirname, '..');
const N = Number(arg('--records', '20'));
const MODELS = arg('--models', 'mamba-facts,neox-facts').split(',');
const PAPER = process.argv.includes('--paper');
const TEMPLATES = PAPER ? {} : { lengths: [[5, 3], [10, 3]] as Array<[number, number]> };
const VALUE: ValueOptions = PAPER ? {} : { steps: 10 };

async function main(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  for (const name of MODELS) {
    const model = await Model.load(path.join(ROOT, 'data', 'models', name));
    const site = editSite(model, defaultLayer(model));
    const templates = await contextTemplates(model, TEMPLATES);
    const records = await knownRecords(model, loadCounterFact(), { limit: N });
    const requests = records.map((r) => normalizeRequest(model, editRequestOf(r)));
    await optimizeValues(model, site, requests.slice(0, 2), templates, { ...VALUE, steps: 2 }); // warm-up: compile the graphs
    let t = clock();
    const single: ValueResult[] = [];
    for (const q of requests) single.push(await optimizeValue(model, site, q.template, q.subject, q.targetIds, templates, VALUE));
    const one = t();
    t = clock();
    const batched = await optimizeValues(model, site, requests, templates, VALUE);
    const all = t();
    const maxAbs = (a: Float32Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const diff = Math.max(...batched.map((b, j) => b.vStar.reduce((m, x, i) => Math.max(m, Math.abs(x - single[j].vStar[i])), 0) / maxAbs(single[j].delta)));
    const row = {
      model: name, site: `${site.matrix}@L${site.layer}`, setting: PAPER ? 'paper' : 'ci', templates: templates.length, records: requests.length,
      steps: single.reduce((s, r) => s + r.trace.length, 0) / requests.length,
      secondsPerEditOneByOne: one.wall / requests.length, secondsPerEditBatched: all.wall / requests.length,
      cpuPerEditOneByOne: one.cpu / requests.length, cpuPerEditBatched: all.cpu / requests.length,
      speedupWall: one.wall / all.wall, speedupCpu: one.cpu / all.cpu, maxRelDiff: diff, load: os.loadavg()[0],
    };
    rows.push(row);
    console.error(`${name} ${row.site} (${row.setting}, ${row.templates} templates, ${requests.length} records, ${row.steps.toFixed(1)} steps/edit): ` +
      `${row.secondsPerEditOneByOne.toFixed(2)} s/edit one by one, ${row.secondsPerEditBatched.toFixed(2)} s/edit batched: ${row.speedupWall.toFixed(1)}× wall, ${row.speedupCpu.toFixed(1)}× CPU; ` +
      `max |Δv*|/max|δ| ${diff.toExponential(1)}; load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
