/**
 * Exact activation patching on the cells attribution estimates: for each pair, kind, layer and
 * position, the base run with that one cell replaced by the source run's activation, through the
 * engine's batched `sweep` (runs start at the patched layer from the base run's residual and, for
 * Mamba, at the patched position from its recurrent state: exact, see sweep.ts and resume.ts).
 * effect = m(patched) − m(base): the quantity AtP estimates.
 */
import type { Model } from '../../runtime/model';
import { sweep } from '../../runtime/sweep';
import type { Row } from '../../runtime/sweep';
import type { InterventionSpec } from '../../runtime/interventions';
import { Tensor } from '../../runtime/tensor';
import { mambaStateAt, resumeCacheNames } from '../../runtime/resume';
import { hookOf, selectKinds, selectLayers } from './kinds';
import { metricValues } from './grad-pass';
import type { AttributionMetric } from './metrics';
import { checkPairs, Direction, pairBatches, PromptPair } from './pairs';

export interface ExactOptions {
  kinds?: string[];
  layers?: number[];
  direction?: Direction;
  /** Pairs whose source and base caches are held at once (default 16; Mamba 4: its base cache holds every state). */
  pairChunk?: number;
  /** Patched runs per forward pass (default: the sweep's memory-based size). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PairExact {
  pair: number;
  base: number;
  source: number;
  /** kind → [layer][position]: m(patched) − m(base). */
  kinds: Record<string, number[][]>;
}

export async function exactPatching(model: Model, pairs: PromptPair[], metric: AttributionMetric, opts: ExactOptions = {}): Promise<PairExact[]> {
  checkPairs(pairs);
  const direction = opts.direction ?? 'denoising';
  const kinds = selectKinds(model, opts.kinds).map((k) => k.kind);
  const layers = selectLayers(model, opts.layers);
  const names = kinds.flatMap((k) => layers.map((l) => hookOf(k, l)));
  const mamba = model.arch === 'mamba';
  const baseNames = mamba ? resumeCacheNames(model) : [...new Set(layers)].map((l) => hookOf('resid_pre', l));
  const total = pairs.reduce((s, p) => s + p.clean.length, 0) * kinds.length * layers.length;
  let done = 0;
  const out: PairExact[] = [];
  for (const { chunk, p0, pairOf, rows } of pairBatches(pairs, opts.pairChunk ?? (mamba ? 4 : 16), direction)) {
    const src = await model.run(rows.source, { cache: names, logits: 'last' });
    const base = await model.run(rows.base, { cache: baseNames, logits: 'last' });
    const baseValues = metricValues(base.logits!, pairOf, metric);
    const sourceValues = metricValues(src.logits!, pairOf, metric);
    const D = model.config.dModel;
    // The base run's residual entering `layer`, row b's real positions: [1,T_b,D].
    const residOf = (layer: number, row: Row) => {
      const b = row.b as number;
      const full = base.cache.get(hookOf('resid_pre', layer)); // [B,T,D]
      const T = full.shape[1];
      const n = rows.base[b].length;
      return new Tensor(full.data.slice(b * T * D, (b * T + n) * D), [1, n, D]);
    };
    const grid: Row[] = [];
    chunk.forEach((p, b) => kinds.forEach((kind) => layers.forEach((layer) => {
      for (let pos = 0; pos < p.clean.length; pos++) grid.push({ b, kind, layer, pos });
    })));
    const table = await sweep(model, grid, {
      input: (row) => rows.base[row.b as number],
      interventions: (row): InterventionSpec[] => [{
        hook: hookOf(row.kind as string, row.layer as number), positions: [row.pos as number], op: 'replace', source: { cache: 'source', row: row.b as number },
      }],
      caches: { source: src.cache },
      metric: (logits, row) => ({ m: metric(logits, pairOf[row.b as number]).value }),
      batchSize: opts.batchSize,
      prefix: {
        startLayer: (row) => row.layer as number, resid: residOf,
        startPosition: mamba ? (row) => row.pos as number : undefined,
        state: mamba ? (layer, position, row) => mambaStateAt(model, base.cache, layer, position, row.b as number) : undefined,
      },
      onProgress: (n) => opts.onProgress?.(done + n, total),
    });
    done += grid.length;
    const results = chunk.map((p, b): PairExact => ({
      pair: p0 + b, base: baseValues[b], source: sourceValues[b],
      kinds: Object.fromEntries(kinds.map((k) => [k, layers.map(() => new Array<number>(p.clean.length).fill(NaN))])),
    }));
    for (const r of table.objects() as Row[]) {
      const b = r.b as number;
      results[b].kinds[r.kind as string][layers.indexOf(r.layer as number)][r.pos as number] = (r.m as number) - baseValues[b];
    }
    out.push(...results);
  }
  return out;
}
