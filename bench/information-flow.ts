/**
 * npx tsx bench/information-flow.ts [--json] [--rows N]
 *
 * Cost of the information-flow interventions on the demo models, per batch row (one knocked-out or
 * restored variant of a 10-token prompt), wall and process CPU time (this machine is shared: CPU time
 * is the steadier number): a plain forward, exact path blocking into the last token in a 3-layer
 * window (all three modes), the paper's mean-ablation knockout in the same window, attention knockout,
 * path restoration with and without pins, and the two engine costs behind path blocking: one
 * Conv+SSM slice (runLayerSlice) vs a whole layer, and a layer with a write hook before vs after the scan.
 */
import os from 'os';
import path from 'path';
import { Model, runLayerSlice } from '../src';
import type { HookFn } from '../src/runtime/forward';
import { attentionKnockoutEdits, runVariants, Variant } from '../src/methods/information-flow';

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const ROWS = Number(args[args.indexOf('--rows') + 1] || 64) || 64;
const REPS = 3;

interface Row { case: string; model: string; rows: number; wallMsPerRow: number; cpuMsPerRow: number }
const results: Row[] = [];

async function measure(label: string, model: string, rows: number, f: () => Promise<unknown>): Promise<void> {
  await f(); // compile / warm up
  let wall = Infinity;
  let cpu = Infinity;
  for (let r = 0; r < REPS; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await f();
    const c = process.cpuUsage(c0);
    wall = Math.min(wall, performance.now() - t0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
  results.push({ case: label, model, rows, wallMsPerRow: wall / rows, cpuMsPerRow: cpu / rows });
  if (!JSON_OUT) console.error(`${label.padEnd(58)} ${model.padEnd(11)} ${(wall / rows).toFixed(2).padStart(7)} ms/row wall ${(cpu / rows).toFixed(2).padStart(7)} ms/row CPU`);
}

async function main(): Promise<void> {
  console.error(`information-flow bench: ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}, ORT threads ${process.env.FACTLENS_THREADS ?? 'default'}, ${ROWS} rows per pass`);
  const mamba = await Model.load(path.join(ROOT, 'data/models/mamba-facts'));
  const neox = await Model.load(path.join(ROOT, 'data/models/neox-facts'));
  const prompt = '<|endoftext|> Roberto Clemente plays the sport of';
  const ids = mamba.encode(prompt); // 9 tokens, subject [1,5)
  const T = ids.length;
  const subject = [1, 2, 3, 4];
  const win = [11, 12, 13];
  const many = (f: () => Partial<Variant>) => Array.from({ length: ROWS }, () => ({ ids, target: 100, ...f() }));
  const E = mamba.mambaConfig.dInner;
  const mean = new Float32Array(E);

  await measure('plain forward (16 layers)', 'mamba-facts', ROWS, () => runVariants(mamba, many(() => ({}))));
  for (const mode of ['exact', 'exact+slots', 'retention'] as const) {
    await measure(`path blocking ${mode}, subject → last, 3 layers`, 'mamba-facts', ROWS, () => runVariants(mamba, many(() => ({ blocks: [{ layers: win, targets: 'last', sources: subject, mode }] }))));
  }
  await measure('mean-ablation knockout, subject, 3 layers', 'mamba-facts', ROWS, () => runVariants(mamba, many(() => ({
    edits: win.map((l) => ({ hook: `layers.${l}.mixer.x`, apply: (v: Float32Array) => subject.forEach((t) => v.set(mean, t * E)) })),
  }))));
  const D = mamba.config.dModel;
  const resid = new Float32Array(T * D);
  for (const [pin, hook] of [['none', ''], ['s', 'mixer.ssm_out'], ['g', 'mixer.gate'], ['o', 'mixer.out']]) {
    await measure(`restore h^3 at the last token, pin ${pin} in layers 4–15`, 'mamba-facts', ROWS, () => runVariants(mamba, many(() => ({
      edits: [
        { hook: 'layers.3.resid_post', apply: (v: Float32Array) => v.set(resid.subarray(0, D), (T - 1) * D) },
        ...(hook ? Array.from({ length: 12 }, (_, i) => ({ hook: `layers.${i + 4}.${hook}`, apply: (v: Float32Array) => v.fill(0, (T - 1) * E, T * E) })) : []),
      ],
    }))));
  }

  const nids = neox.encode(prompt);
  await measure('plain forward (8 layers)', 'neox-facts', ROWS, () => runVariants(neox, Array.from({ length: ROWS }, () => ({ ids: nids, target: 100 }))));
  await measure('attention knockout, subject ↛ last, 3 layers', 'neox-facts', ROWS, () => runVariants(neox, Array.from({ length: ROWS }, () => ({
    ids: nids, target: 100, edits: attentionKnockoutEdits([3, 4, 5], nids.length - 1, subject),
  }))));

  // Engine costs behind path blocking (one layer, ROWS rows).
  const batch = mamba.batch(Array.from({ length: ROWS }, () => ids));
  const a = (await mamba.runWithCache(batch, ['layers.5.mixer.x'], { logits: 'none' })).cache.get('layers.5.mixer.x');
  await measure('engine: one whole layer', 'mamba-facts', ROWS, () => mamba.run(batch, { logits: 'none', untilLayer: 1 }));
  await measure('engine: Conv+SSM slice (runLayerSlice mixer.x → ssm_out)', 'mamba-facts', ROWS, () => runLayerSlice(mamba, 5, { 'mixer.x': a }, ['mixer.ssm_out']));
  const noop: HookFn = () => undefined;
  for (const h of ['mixer.x', 'mixer.ssm_out', 'resid_post']) {
    await measure(`engine: one layer with a write hook at ${h}`, 'mamba-facts', ROWS, () => mamba.run(batch, { logits: 'none', untilLayer: 1, hooks: [[`layers.0.${h}`, noop]] }));
  }
  if (JSON_OUT) console.log(JSON.stringify(results, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
