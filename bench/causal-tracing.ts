/**
 * npx tsx bench/causal-tracing.ts [--facts N] [--model DIR] [--window W] [--json]
 *
 * The paper's causal-tracing experiment at scale on mamba-facts: known facts of the nine relations
 * of the paper's figures, alternative-subject corruption, restoration of the residual stream (single
 * layer) and of s, g, o (window) at every (layer, token) cell, then the AIE by token group.
 * Prints the time of each phase, facts per second and cells per second (wall and process CPU: this
 * machine is shared, CPU time is the steadier number), and where the AIE maps peak.
 */
import os from 'os';
import path from 'path';
import { arg, clock } from './clock';

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const N_FACTS = Number(arg('--facts', '200'));
const MODEL = arg('--model', path.join(ROOT, 'data/models/mamba-facts'));
const JSON_OUT = args.includes('--json');

async function main(): Promise<void> {
  const { Model } = await import('../src/runtime/model');
  const { loadRelations } = await import('../src/data/relations');
  const { knownFacts } = await import('../src/data/known-facts');
  const { alignsWith, averageByKind, chooseAltSubjects, peak, roundRobin, scaledWindow, traceFacts } = await import('../src/methods/causal-tracing');
  const log = (s: string) => (JSON_OUT ? undefined : console.error(s));
  log(`causal-tracing bench: ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ORT threads ${process.env.FACTLENS_THREADS ?? 'default'}`);
  const model = await Model.load(MODEL);
  const window = Number(arg('--window', String(scaledWindow(model.arch, model.nLayers))));

  // Known facts: enough per relation to reach N_FACTS in all (each relation's known facts are its s′ pool).
  let t = clock();
  const perRelation = Math.ceil((1.5 * N_FACTS) / 9);
  const known = await knownFacts(model, loadRelations(), { limit: perRelation });
  const tKnown = t();
  log(`known facts: ${known.numRows()} (≤ ${perRelation} per relation) in ${tKnown.wall.toFixed(1)} s wall, ${tKnown.cpu.toFixed(1)} s CPU`);

  // Facts that have an alternative subject (same relation, other object, prompts that align), round-robin over relations.
  const withAlt = chooseAltSubjects(known, { seed: 0, accept: alignsWith(model) });
  const facts = roundRobin(withAlt, N_FACTS).select(known.columnNames());

  t = clock();
  let lastPrint = 0;
  const traces = await traceFacts(model, facts, {
    pool: known, seed: 0, window,
    onProgress: (done, total) => {
      const now = performance.now();
      if (now - lastPrint > 30_000) (lastPrint = now, log(`  ${done}/${total} cells`));
    },
  });
  const tTrace = t();
  const nFacts = traces.results.length;
  const cells = traces.results.reduce((s, r) => s + r.reduce((a, k) => a + k.p.length * k.p[0].length, 0), 0);
  const aies = averageByKind(model, traces);
  const ok = (traces.summary.array('status') as string[]).filter((s) => s === 'ok').length;

  const result = {
    model: path.basename(MODEL), layers: model.nLayers, window, facts: nFacts, factsOk: ok, cells,
    knownSeconds: tKnown.wall, traceSeconds: tTrace.wall, traceCpuSeconds: tTrace.cpu,
    factsPerSecond: nFacts / tTrace.wall, cellsPerSecond: cells / tTrace.wall,
    peaks: Object.fromEntries(aies.map((a) => [a.kind, { subjectLast: peak(a, 'subject_last'), lastToken: peak(a, 'last token') }])),
    load: os.loadavg()[0],
  };
  if (JSON_OUT) {
    console.log(JSON.stringify(result));
    return;
  }
  log(`traced ${nFacts} facts (${ok} with p_clean − p_corrupt ≥ 0.01) × ${aies.length - (aies.length > 4 ? 1 : 0)} kinds, ${cells} cells`);
  log(`trace time ${tTrace.wall.toFixed(1)} s wall, ${tTrace.cpu.toFixed(1)} s CPU → ${result.factsPerSecond.toFixed(3)} facts/s, ${result.cellsPerSecond.toFixed(0)} cells/s`);
  log(`total (known facts + trace) ${(tKnown.wall + tTrace.wall).toFixed(1)} s`);
  for (const a of aies) {
    const s = peak(a, 'subject_last');
    const l = peak(a, 'last token');
    log(`  AIE ${a.kind.padEnd(9)} subject_last peak ${s.value.toFixed(2)} @ ${s.layer}, last token peak ${l.value.toFixed(2)} @ ${l.layer}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
