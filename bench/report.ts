/** The bench's rows, their JSON form, and the readable table with targets. */
import type { SweepBench } from './sweep-bench';

export type BenchMode = 'default' | 'packed';

export interface ForwardRow {
  model: string;
  arch: 'mamba' | 'gpt_neox' | 'mamba2';
  /** Model.load(dir) or Model.load(dir, { packed: true }). */
  mode: BenchMode;
  batch: number;
  tokens: number;
  msBest: number;
  msMedian: number;
  reps: number;
  gflopPerForward: number;
  peakGflops: number;
  maxRssBytes: number;
  weightBytes: number;
  /** Model.load, and the first forward (one row: compiles the graphs; packed: onnxruntime reads and packs the weights). */
  loadMs: number;
  firstMs: number;
  torchMs?: number; // best of its reps
  torchProbeDiff?: number; // max |logit difference| of a 256-logit probe, this library vs transformers
}

export interface JsonRow {
  model: string;
  mode: BenchMode;
  batch: number;
  tokens: number;
  ms_per_forward: number;
  gflops: number;
  peak_gflops: number;
  rss_over_weights: number;
  load_and_first_forward_ms: number;
}

const r2 = (x: number, d = 2) => Number(x.toFixed(d));

export function toJson(rows: ForwardRow[]): JsonRow[] {
  return rows.map((r) => ({
    model: r.model,
    mode: r.mode,
    batch: r.batch,
    tokens: r.tokens,
    ms_per_forward: r2(r.msBest),
    gflops: r2(r.gflopPerForward / (r.msBest / 1000)),
    peak_gflops: r2(r.peakGflops),
    rss_over_weights: r2(r.maxRssBytes / r.weightBytes, 3),
    load_and_first_forward_ms: r2(r.loadMs + r.firstMs, 0),
  }));
}

/** Text columns, the first `left` aligned left and the rest right. */
function table(head: string[], body: string[][], left = 1): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < left ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

const mark = (ok: boolean) => (ok ? 'ok' : 'MISS');

export function forwardTable(rows: ForwardRow[], baselineRss: number): string {
  const body = rows.map((r) => {
    const gflops = r.gflopPerForward / (r.msBest / 1000);
    const pct = (100 * gflops) / r.peakGflops;
    const rss = r.maxRssBytes / r.weightBytes;
    const speed = r.torchMs !== undefined ? r.torchMs / r.msBest : undefined;
    const speedTarget = r.arch === 'mamba' ? 2 : 1;
    return [
      r.model, r.mode, String(r.batch), String(r.tokens),
      r.msBest.toFixed(1), r.msMedian.toFixed(1), String(r.reps),
      gflops.toFixed(1), `${pct.toFixed(0)}%${r.batch === 32 ? ` ${mark(pct >= 50)}` : ''}`,
      (r.maxRssBytes / 2 ** 20).toFixed(0), `${rss.toFixed(2)} ${mark(rss <= 1.3)}`,
      ((r.maxRssBytes - baselineRss) / r.weightBytes).toFixed(2),
      ((r.loadMs + r.firstMs) / 1000).toFixed(1),
      r.torchMs !== undefined ? r.torchMs.toFixed(1) : '-',
      speed !== undefined ? `${speed.toFixed(2)}x ${mark(speed >= speedTarget)} (≥${speedTarget}x)` : '-',
      r.torchProbeDiff !== undefined ? r.torchProbeDiff.toExponential(1) : '-',
    ];
  });
  return table(
    ['model', 'mode', 'B', 'T', 'ms/fwd', 'median', 'n', 'GFLOP/s', '% peak', 'RSS MB', 'RSS/weights', '(−base)', 'load+1st s', 'torch ms', 'torch/ours', 'Δlogits'],
    body,
    2,
  );
}

export function sweepTable(s: SweepBench): string {
  const row = (label: string, ms: number) => {
    const speed = s.oneByOneMsEstimated / ms;
    return [label, (ms / 1000).toFixed(2), (s.runs / (ms / 1000)).toFixed(1), `${speed.toFixed(1)}x`, `${mark(ms < 1000)} / ${mark(speed >= 5)}`];
  };
  return table(['sweep (mamba-facts, replace resid_pre from clean cache)', 's', 'runs/s', 'vs one-by-one', '<1 s / ≥5x'], [
    row(`sweep, ${s.runs} runs, batch ${s.batchSize}`, s.sweepMs),
    row('sweep with prefix (skips unchanged layers)', s.prefixMs),
    row('... and earlier positions (resumes the recurrent state)', s.resumedMs),
    [`one by one (est.: ${s.oneByOneSample} plain forwards timed, × ${s.runs})`, (s.oneByOneMsEstimated / 1000).toFixed(2), (1000 / s.oneByOneMsEach).toFixed(1), '1.0x', '-'],
  ]);
}
