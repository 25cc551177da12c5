/**
 * AtP against exact patching on the same cells: per kind, Pearson and Spearman over all cells of
 * all pairs (with 95 % intervals from a bootstrap over pairs: a pair's cells are resampled together,
 * as they are not independent), the mean top-k overlap per pair (exact's k largest |effect| cells
 * that the estimate also ranks in its k largest), and the false negatives: exact top-k cells the
 * estimate ranks below k.
 */
import * as aq from 'arquero';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { attributionPatching, AttributionOptions, PairAttribution } from './atp';
import { magnitudeRanks, pearson, spearman, topIndices } from './agreement';
import { bootstrapInterval } from '../../stats/bootstrap';
import { exactPatching, PairExact } from './exact';
import type { AttributionMetric } from './metrics';
import type { PromptPair } from './pairs';

type Table = ReturnType<typeof aq.from>;

export interface CompareOptions extends AttributionOptions {
  /** k of the top-k overlap per pair and kind (default 10). */
  topK?: number;
  /** Exact effects already computed for these pairs (skips the exact sweep). */
  exact?: PairExact[];
  /** Estimates already computed for these pairs (skips attributionPatching). */
  estimates?: PairAttribution[];
  /** Resamples of the pair bootstrap behind the correlation intervals (default 500; seeded). */
  intervalResamples?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface Comparison {
  /** One row per kind: arch, kind, method, direction, pairs, cells, pearson (+ pearsonLo/Hi), spearman (+ spearmanLo/Hi), topK, overlap, falseNegatives. */
  table: Table;
  /** One row per false negative: kind, pair, layer, pos, exact, estimate, exactRank, estimateRank. */
  misses: Table;
  estimates: PairAttribution[];
  exact: PairExact[];
}

export async function compareWithExact(model: Model, pairs: PromptPair[], metric: AttributionMetric, opts: CompareOptions = {}): Promise<Comparison> {
  const k = opts.topK ?? 10;
  if (!(Number.isInteger(k) && k >= 1)) throw new FactlensError(`compareWithExact: topK must be a positive integer, got ${k}`);
  const estimates = opts.estimates ?? await attributionPatching(model, pairs, metric, opts);
  if (estimates.length !== pairs.length) throw new FactlensError(`compareWithExact: estimates has ${estimates.length} pairs, expected ${pairs.length}`);
  const exact = opts.exact ?? await exactPatching(model, pairs, metric, { kinds: opts.kinds, layers: opts.layers, direction: opts.direction, onProgress: opts.onProgress });
  if (exact.length !== pairs.length) throw new FactlensError(`compareWithExact: exact has ${exact.length} pairs, expected ${pairs.length}`);
  const rows: Record<string, unknown>[] = [];
  const misses: Record<string, unknown>[] = [];
  for (const kind of opts.kinds ?? Object.keys(estimates[0].kinds)) {
    const est: number[] = [];
    const ex: number[] = [];
    const perPair: Array<{ est: number[]; ex: number[] }> = [];
    let overlap = 0;
    let falseNegatives = 0;
    estimates.forEach((e, p) => {
      const m = e.kinds[kind];
      if (!m) throw new FactlensError(`compareWithExact: estimates of pair ${p} have no kind "${kind}"`);
      const truth = exact[p].kinds[kind];
      if (!truth) throw new FactlensError(`compareWithExact: exact effects of pair ${p} have no kind "${kind}"`);
      const a = m.estimate.flat();
      const x = truth.flat();
      est.push(...a);
      ex.push(...x);
      perPair.push({ est: a, ex: x });
      const kk = Math.min(k, x.length);
      const estRank = magnitudeRanks(a);
      const exRank = magnitudeRanks(x);
      const T = m.estimate[0].length;
      for (const i of topIndices(x, kk)) {
        if (estRank[i] < kk) { overlap += 1 / (kk * estimates.length); continue; }
        falseNegatives++;
        misses.push({ kind, pair: p, layer: m.layers[Math.floor(i / T)], pos: i % T, exact: x[i], estimate: a[i], exactRank: exRank[i], estimateRank: estRank[i] });
      }
    });
    const [p, sp] = [pearson, spearman].map((corr) => bootstrapInterval(perPair.length, (units) => corr(...pooled(perPair, units)), { resamples: opts.intervalResamples ?? 500 }));
    rows.push({
      arch: model.arch, kind, method: estimates[0].method, direction: estimates[0].direction, pairs: pairs.length, cells: est.length,
      pearson: pearson(est, ex), pearsonLo: p.lo, pearsonHi: p.hi, spearman: spearman(est, ex), spearmanLo: sp.lo, spearmanHi: sp.hi, topK: k, overlap, falseNegatives,
    });
  }
  return { table: aq.from(rows), misses: aq.from(misses), estimates, exact };
}

/** The cells of the chosen pairs (with repeats), estimates and exact effects side by side. */
function pooled(perPair: Array<{ est: number[]; ex: number[] }>, units: Int32Array): [Float64Array, Float64Array] {
  let n = 0;
  for (const u of units) n += perPair[u].est.length;
  const est = new Float64Array(n); // [cells]
  const ex = new Float64Array(n); // [cells]
  let at = 0;
  for (const u of units) {
    est.set(perPair[u].est, at);
    ex.set(perPair[u].ex, at);
    at += perPair[u].est.length;
  }
  return [est, ex];
}
