/**
 * npm run bench [-- --json] [--quick] [--large] [--models a,b] [--mode default|packed|both] [--no-torch] [--no-sweep] [--no-forward] [--no-generate] [--budget MS]
 *
 * Forward throughput (ms per forward of B × 16-token prompts, batch 1 and 32,
 * logits at every position) on the demo models and on random-weight
 * checkpoints of real shapes, with achieved matmul GFLOP/s next to the ORT
 * matmul peak measured in the same run, peak RSS over float32 weight bytes
 * (one child process per model, mode and batch), transformers on PyTorch side
 * by side where a Python with torch is available, issue 3's sweep benchmark, and greedy generation
 * tokens/s on the mamba-130m / pythia-160m shapes against the memory-bandwidth bound (generate-bench.ts).
 * Each model runs as loaded by default and with packed weights (`--mode` picks
 * one; `--packed` = `--mode packed`). `--large` adds the 2.8b shapes (11 GB
 * checkpoints generated once, sharded; minutes per batch-32 forward).
 * Times are the best of the timed repetitions (the median is shown too).
 * --json prints only the JSON list on stdout; everything else goes to stderr.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { expectedWeights, isStoredTransposed, openCheckpoint } from '../src/io';
import { BATCHES, benchIds, CACHE, ISSUE_TORCH_MS, MODELS, ROOT, TOKENS } from './configs';
import { checkpointDir } from './checkpoints';
import { matmulFlops } from './flops';
import { measurePeak } from './peak';
import { lastJson, median, min, run, TSX } from './proc';
import { BenchMode, ForwardRow, forwardTable, sweepTable, toJson } from './report';
import { SweepBench, sweepBench } from './sweep-bench';
import { torchEnv, torchForward } from './torch';
import type { ChildResult } from './forward-child';
import { GENERATE_MODELS, generateBench, GenerateRow, generateTable, NEW_TOKENS } from './generate-bench';

interface Args {
  json: boolean;
  quick: boolean;
  models: string[] | null;
  torch: boolean;
  sweep: boolean;
  forward: boolean;
  generate: boolean;
  budgetMs: number;
  /** How models are loaded: Model.load(dir), Model.load(dir, { packed: true }), or each in turn. */
  modes: BenchMode[];
  /** Include the 2.8b shapes. */
  large: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { json: false, quick: false, models: null, torch: true, sweep: true, forward: true, generate: true, budgetMs: 2500, modes: ['default', 'packed'], large: false };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--json') a.json = true;
    else if (f === '--quick') a.quick = true;
    else if (f === '--no-torch') a.torch = false;
    else if (f === '--no-sweep') a.sweep = false;
    else if (f === '--no-forward') a.forward = false;
    else if (f === '--no-generate') a.generate = false;
    else if (f === '--packed') a.modes = ['packed'];
    else if (f === '--large') a.large = true;
    else if (f === '--mode') {
      const m = argv[++i];
      if (m !== 'default' && m !== 'packed' && m !== 'both') throw new Error(`bench: --mode takes default, packed or both, not "${m}"`);
      a.modes = m === 'both' ? ['default', 'packed'] : [m];
    }
    else if (f === '--models') a.models = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (f === '--budget') a.budgetMs = Number(argv[++i]);
    else throw new Error(`bench: unknown flag "${f}" (see bench/main.ts)`);
  }
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const out = (s: string) => (args.json ? process.stderr : process.stdout).write(s + '\n');
  const log = (s: string) => process.stderr.write(s + '\n');
  const models = MODELS.filter((m) => (args.models ? args.models.includes(m.name) : (!args.quick || m.dir) && (!m.large || args.large)));
  const unknown = (args.models ?? []).filter((n) => !MODELS.some((m) => m.name === n));
  if (unknown.length) throw new Error(`bench: unknown model(s) ${unknown.join(', ')} (known: ${MODELS.map((m) => m.name).join(', ')})`);
  const started = performance.now();
  const load0 = os.loadavg()[0];
  log(`bench: modes ${args.modes.join(', ')} (packed = Model.load(dir, { packed: true }))`);
  log(`bench: ${os.cpus().length} CPUs, load average ${load0.toFixed(1)} at start; ORT threads ${process.env.FACTLENS_THREADS ?? 'default'}`);

  log('ORT matmul peak ...');
  const peak = await measurePeak();
  log(`  ${peak.gflops.toFixed(1)} GFLOP/s (${peak.shape}: linear/transposed weight ${peak.linear.toFixed(1)}, plain ${peak.plain.toFixed(1)})`);
  const baseline = lastJson<{ maxRssBytes: number }>(await run(TSX, ['bench/rss-baseline.ts']), 'RSS baseline').maxRssBytes;

  const torch = args.torch ? await torchEnv(log) : { python: null, note: 'PyTorch comparison skipped (--no-torch)' };
  log(torch.note);

  const rows: ForwardRow[] = [];
  for (const m of args.forward ? models : []) {
    const dir = checkpointDir(m, log);
    const ckpt = openCheckpoint(dir);
    const cfg = ckpt.config;
    ckpt.close();
    const mine = new Map<ForwardRow, ChildResult>();
    for (const mode of args.modes) {
      // GPT-2's Conv1D weights are stored [in,out]: Model.load refuses packed mode for it.
      if (mode === 'packed' && [...expectedWeights(cfg).keys()].some((n) => isStoredTransposed(n, cfg.arch))) {
        log(`${m.name}: packed mode skipped (Conv1D weights cannot be packed from the file)`);
        continue;
      }
      for (const B of BATCHES) {
        log(`${m.name}: ${mode}, batch ${B} ...`);
        const p = await run(TSX, ['bench/forward-child.ts', dir, String(B), String(TOKENS), String(args.budgetMs), mode]);
        const r = lastJson<ChildResult>(p, `${m.name} ${mode} batch ${B}`);
        const row: ForwardRow = {
          model: m.name, arch: m.arch, mode, batch: B, tokens: TOKENS, msBest: min(r.ms), msMedian: median(r.ms), reps: r.ms.length,
          gflopPerForward: matmulFlops(cfg, B, TOKENS) / 1e9, peakGflops: peak.gflops, maxRssBytes: r.maxRssBytes, weightBytes: r.weightBytes,
          loadMs: r.loadMs, firstMs: r.firstMs,
        };
        rows.push(row);
        mine.set(row, r);
      }
    }
    if (torch.python) {
      log(`${m.name}: transformers ...`);
      try {
        const batches = Object.fromEntries(BATCHES.map((B) => [B, benchIds(B, TOKENS, cfg.vocabSize)]));
        for (const t of await torchForward(torch.python, dir, batches, args.budgetMs)) {
          for (const row of rows.filter((r) => r.model === m.name && r.batch === t.batch)) {
            row.torchMs = min(t.ms);
            row.torchProbeDiff = Math.max(...mine.get(row)!.probe.map((x, i) => Math.abs(x - t.probe[i])));
          }
        }
      } catch (e) {
        log(`  ${(e as Error).message}`);
      }
    }
  }

  let generated: GenerateRow[] = [];
  const genModels = GENERATE_MODELS.filter((n) => (args.models ? args.models.includes(n) : !args.quick));
  if (args.generate && genModels.length) {
    log('generation ...');
    generated = await generateBench(genModels, torch.python, args.budgetMs, log);
  }

  let sweep: SweepBench | null = null;
  if (args.sweep) {
    log('sweep benchmark ...');
    sweep = await sweepBench(log);
  }
  const load1 = os.loadavg()[0];

  out('');
  out(`Forward, ${TOKENS}-token prompts, logits at every position; ms/fwd = best of n timed runs after a warm-up.`);
  out(`GFLOP/s counts matmul FLOPs only (every linear incl. the unembedding, attention QKᵀ and PV); ORT matmul peak ${peak.gflops.toFixed(1)} GFLOP/s (${peak.shape}, this run).`);
  out(`RSS = peak RSS of a child process per model and batch; (−base) subtracts ${(baseline / 2 ** 20).toFixed(0)} MB, the peak RSS of a process running the tiny fixture model.`);
  out(`Targets: % peak ≥50% at batch 32; RSS/weights ≤1.3; transformers CPU time / ours ≥2x for Mamba, ≥1x for Pythia. ${torch.note}.`);
  out('');
  out(forwardTable(rows, baseline));
  const issue = Object.entries(ISSUE_TORCH_MS).map(([k, [a, b]]) => `${k} ${a}/${b}`).join(', ');
  out(`\n(transformers ms per forward quoted in issue 2 for an idle machine, batch 1/32: ${issue})`);
  if (generated.length) {
    out('');
    out(`Greedy generation, ${TOKENS}-token prompts, ${NEW_TOKENS} new tokens per row; tok/s = new tokens of all rows per second (best run, prompt read included).`);
    out(`Bound = memory bandwidth ${generated[0].bandwidthGBs.toFixed(1)} GB/s (this run) / float32 weight bytes: every weight read once per step. Targets: batch 1 ≥80% of bound and ≥1.5x transformers; batch 32 ≥10x batch 1.`);
    out(generateTable(generated));
  }
  if (sweep) {
    out('');
    out(sweepTable(sweep));
    out('(one-by-one is extrapolated from a timed sample of plain single-prompt forwards, not measured for every run; target: whole grid < 1 s and ≥5x faster than one-by-one)');
  }
  out(`\nload average ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at end on ${os.cpus().length} CPUs${Math.max(load0, load1) > os.cpus().length ? ': the machine was busy, so times are inflated' : ''}; bench took ${((performance.now() - started) / 1000).toFixed(0)} s.`);

  fs.mkdirSync(CACHE, { recursive: true });
  const detail = { date: new Date().toISOString(), loadavg: [load0, load1], peak, baselineRss: baseline, torch: torch.note, rows, generate: generated, sweep };
  fs.writeFileSync(path.join(CACHE, 'bench-last.json'), JSON.stringify(detail, null, 1));
  out(`(details: ${path.relative(ROOT, path.join(CACHE, 'bench-last.json'))})`);
  if (args.json) process.stdout.write(JSON.stringify(toJson(rows)) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exit(1);
});
