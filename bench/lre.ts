/**
 * npx tsx bench/lre.ts [--json] [--relation ID] [--rank-step N] [--engine]
 * npx tsx bench/lre.ts --sweeps ID,ID,... [--bars ID,...] [--trials N] [--max-test N] [--rank-step N] --out FILE.json
 *
 * The second form runs the paper's sweeps (every layer, n = 5, 25 β) on both demo models and writes
 * every (model, relation, trial, layer) row to FILE.json, with seconds per relation; --bars adds
 * relations evaluated for faithfulness only at each model's 3 best sweep layers (1 trial).
 *
 * Cost of the LRE pipeline on the demo models, wall and process CPU time (this machine is shared:
 * CPU time is the steadier number):
 * - one 256×256 Jacobian ∂z/∂h of a 5-shot prompt at a middle layer, and the Jacobians of every layer
 *   of that prompt from one backward pass (how the estimator runs);
 * - with --engine, the engine's generic jacobian() on the same prompt (full-length runs, 64 rows per
 *   pass) for comparison;
 * - the SVD of a 256×256 J (one-sided Jacobi, JS);
 * - one relation sweep (1 trial, every layer, 25 β, ranks range(0, 256, step)), split into the knowledge
 *   filter, the n = 5 Jacobians, and per layer faithfulness / SVD + causality.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Model, jacobian } from '../src';
import { loadRelation } from '../src/data/relations';
import {
  betaGrid, causality, editTargets, encodePrompts, estimateFromEncoded, faithfulness, hStream, layerCurves, LreLayer, lreLayers,
  makeIclPrompt, prepareTrial, rankGrid, streamHook, streamJacobians, subjectPrompt, sweepRelation, SweepRow, trainingPrompts, zStream,
} from '../src/methods/lre';
import { rng } from '../src/runtime/generate';

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const ENGINE = args.includes('--engine');
const opt = (name: string, d: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : d);
const RELATION = opt('--relation', 'country_capital_city');
const RANK_STEP = Number(opt('--rank-step', '8'));

interface Row { case: string; model: string; wallS: number; cpuS: number; note?: string }
const results: Row[] = [];

async function time<T>(label: string, model: string, f: () => Promise<T>, note?: string): Promise<T> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await f();
  const c = process.cpuUsage(c0);
  const row = { case: label, model, wallS: (performance.now() - t0) / 1000, cpuS: (c.user + c.system) / 1e6, note };
  results.push(row);
  if (!JSON_OUT) console.error(`${label.padEnd(52)} ${model.padEnd(11)} ${row.wallS.toFixed(2).padStart(8)} s wall ${row.cpuS.toFixed(2).padStart(8)} s CPU ${note ?? ''}`);
  return out;
}

async function benchModel(model: Model): Promise<void> {
  const rel = loadRelation(RELATION);
  const template = rel.promptTemplates[0];
  const train = rel.samples.slice(0, 5);
  const prompt = subjectPrompt(model, makeIclPrompt(template, train[0].subject, train), train[0].subject);
  const [enc] = await encodePrompts(model, [prompt]);
  const e = zStream(model);
  const mid = hStream(model, Math.floor(model.nLayers / 2));
  const tokens = `${prompt.ids.length} tokens, subject ends at ${prompt.subjectLast}`;
  await streamJacobians(model, enc, [mid], e); // compile
  await time(`Jacobian at stream ${mid} (middle layer)`, model.name, () => streamJacobians(model, enc, [mid], e), tokens);
  const all = Array.from({ length: e + 1 }, (_, k) => k);
  await time(`Jacobians of all ${all.length} streams, one backward`, model.name, () => streamJacobians(model, enc, all, e), tokens);
  if (ENGINE) {
    await time(`engine jacobian() at stream ${mid} (64 rows/pass)`, model.name, () => jacobian(model, [prompt.ids], { hook: streamHook(model, mid), position: prompt.subjectLast }, { hook: streamHook(model, e), position: prompt.ids.length - 1 }, { chunk: 64 }), tokens);
  }

  // One relation sweep, by parts.
  const layers = lreLayers(model);
  const data = (await time(`sweep: knowledge filter (${RELATION})`, model.name, () => prepareTrial(model, rel, 0, {})))!;
  const enc5 = await encodePrompts(model, trainingPrompts(model, template, data.train));
  const lres = await time(`sweep: ${data.train.length} training Jacobians, ${layers.length} layers`, model.name, () => estimateFromEncoded(model, enc5, layers));
  const tests = data.tests;
  const targets = editTargets(tests, rng(1));
  const ranks = rankGrid(model, RANK_STEP);
  await time(`sweep: faithfulness, 25 β × ${layers.length} layers`, model.name, async () => {
    for (const l of layers) await faithfulness(model, lres.get(l)!, tests, { betas: betaGrid(model) });
  }, `${tests.length} tests`);
  await time(`sweep: SVD of J × ${layers.length} layers`, model.name, async () => {
    for (const l of layers) lres.get(l)!.svd();
  });
  await time(`sweep: causality, ${ranks.length} ranks × ${layers.length} layers`, model.name, async () => {
    for (const l of layers) await causality(model, lres.get(l)!, tests, targets, { ranks });
  }, `${tests.length} tests`);
  const parts = results.filter((r) => r.model === model.name && r.case.startsWith('sweep:'));
  const total = { case: `sweep total (1 trial, ${RELATION})`, model: model.name, wallS: parts.reduce((s, r) => s + r.wallS, 0), cpuS: parts.reduce((s, r) => s + r.cpuS, 0) };
  results.push(total);
  if (!JSON_OUT) console.error(`${total.case.padEnd(52)} ${model.name.padEnd(11)} ${total.wallS.toFixed(2).padStart(8)} s wall ${total.cpuS.toFixed(2).padStart(8)} s CPU`);
}

async function sweeps(out: string): Promise<void> {
  const ids = opt('--sweeps', '').split(',').filter(Boolean);
  const bars = opt('--bars', '').split(',').filter(Boolean);
  const trials = Number(opt('--trials', '3'));
  const maxTest = Number(opt('--max-test', '50'));
  const rows: SweepRow[] = [];
  const timing: { model: string; relation: string; seconds: number; cpuSeconds: number; kind: string }[] = [];
  const save = () => fs.writeFileSync(out, JSON.stringify({ settings: { ids, bars, trials, maxTest, rankStep: RANK_STEP }, timing, rows }, null, 1));
  for (const name of ['mamba-facts', 'neox-facts']) {
    const model = await Model.load(path.join(ROOT, 'data/models', name));
    const base = { trials, maxTest, nTrain: 5, ranks: rankGrid(model, RANK_STEP) };
    for (const [kind, list] of [['sweep', ids], ['bar', bars]] as const) {
      for (const id of list) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        let layers: LreLayer[] | undefined;
        if (kind === 'bar') {
          const curves = layerCurves(rows.filter((r) => r.model === name));
          const byLayer = new Map<string, number[]>();
          for (const c of curves) byLayer.set(c.layer, [...(byLayer.get(c.layer) ?? []), c.faithfulness]);
          const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
          layers = [...byLayer.entries()].sort((a, b) => avg(b[1]) - avg(a[1])).slice(0, 3).map(([l]) => (l === 'emb' ? 'emb' : Number(l)));
        }
        const got = await sweepRelation(model, loadRelation(id), kind === 'sweep' ? base : { ...base, trials: 1, layers, causality: false });
        rows.push(...got);
        const c = process.cpuUsage(c0);
        timing.push({ model: name, relation: id, kind, seconds: (performance.now() - t0) / 1000, cpuSeconds: (c.user + c.system) / 1e6 });
        console.error(`${name} ${kind} ${id}: ${got.length} rows in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        save();
      }
    }
  }
}

async function main(): Promise<void> {
  const out = opt('--out', '');
  if (args.includes('--sweeps')) {
    if (!out) throw new Error('--sweeps needs --out FILE.json');
    return sweeps(out);
  }
  console.error(`LRE bench: ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}, relation ${RELATION}, rank step ${RANK_STEP}`);
  for (const name of ['mamba-facts', 'neox-facts']) await benchModel(await Model.load(path.join(ROOT, 'data/models', name)));
  if (JSON_OUT) console.log(JSON.stringify(results, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
