/**
 * Average indirect effects over many prompts, by token group, exactly as romba's
 * average_indirect_effects (paper-spec §2.3). With [b, e) the corrupted span (romba's e_range,
 * [min(b_s, b_s′), e_s) for alternative subjects) and T tokens, each prompt's [T][L] grid becomes:
 *
 *   prefix            mean of rows [0, b)               (empty when b = 0 → NaN)
 *   subject_[:-2]     mean of rows [b, e − 2) if e − 2 ≠ b, else zeros
 *   subject_2nd_last  row e − 2                         (the token before a one-token subject)
 *   subject_last      row e − 1
 *   further tokens    mean of rows [e, T − 1) if e ≠ T − 1, else zeros
 *   last token        row T − 1
 *
 * Indices and slices follow Python: a negative index counts from the end, so for a one-token
 * subject that starts the prompt (b = 0, e = 1) subject_2nd_last is row −1 = the last token and
 * subject_[:-2] is rows [0, T − 1); a one-token subject elsewhere gives the empty slice [b, b − 1),
 * whose mean is NaN. Prompts are then averaged with a plain mean, so one NaN makes the group's
 * cell NaN (the blank rows of the paper's figures); `nan: 'skip'` averages the defined values.
 */
import * as aq from 'arquero';
import { FactlensError } from '../../errors';
import type { TraceResult } from './trace';

type Table = ReturnType<typeof aq.from>;

export const AIE_GROUPS = ['prefix', 'subject_[:-2]', 'subject_2nd_last', 'subject_last', 'further tokens', 'last token'];
/** Rows of AIE_GROUPS that are subject tokens (starred in heatmaps; romba's subject_range (1, 4)). */
export const AIE_SUBJECT_ROWS: [number, number] = [1, 4];

/** Python's index normalisation (negative counts from the end). */
function pyIndex(i: number, n: number): number {
  const j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) throw new FactlensError(`AIE grouping: row index ${i} is out of range for ${n} tokens`);
  return j;
}

/** Python's slice bounds [start, end) clipped to [0, n]. */
function pySlice(start: number, end: number, n: number): [number, number] {
  const norm = (i: number) => Math.min(n, Math.max(0, i < 0 ? i + n : i));
  return [norm(start), norm(end)];
}

function meanRows(grid: ArrayLike<number>[], [a, b]: [number, number], L: number): number[] {
  const out = new Array<number>(L).fill(0);
  if (b <= a) return out.fill(NaN); // torch: mean of an empty slice is NaN
  for (let t = a; t < b; t++) for (let l = 0; l < L; l++) out[l] += grid[t][l] / (b - a);
  return out;
}

/** One prompt's [T][L] grid → [6][L] by romba's token groups; `span` = [b, e) as above. */
export function groupTokens(grid: ArrayLike<number>[], span: [number, number]): number[][] {
  const T = grid.length;
  if (!T) throw new FactlensError('AIE grouping: empty grid');
  const L = grid[0].length;
  const [b, e] = span;
  const row = (i: number) => Array.from(grid[pyIndex(i, T)]);
  return [
    meanRows(grid, pySlice(0, b, T), L),
    e - 2 !== b ? meanRows(grid, pySlice(b, e - 2, T), L) : new Array<number>(L).fill(0),
    row(e - 2),
    row(e - 1),
    e !== T - 1 ? meanRows(grid, pySlice(e, -1, T), L) : new Array<number>(L).fill(0),
    row(-1),
  ];
}

export interface AieOptions {
  /** Average IE (default) or the raw restored probabilities p. */
  value?: 'ie' | 'p';
  /** 'propagate' (romba: a NaN in any prompt makes the cell NaN) or 'skip' (nan-mean). */
  nan?: 'propagate' | 'skip';
}

export interface Aie {
  kind: string;
  groups: string[];
  layers: number[];
  window: number;
  /** [6][L] averages. */
  values: number[][];
  /** Prompts averaged, and prompts left out because their IE is undefined (status ≠ 'ok'). */
  count: number;
  excluded: number;
  lowMean: number;
  highMean: number;
}

/** AIE of traces of one kind over many prompts (pooling relations); degenerate prompts are left out. */
export function averageIndirectEffects(results: TraceResult[], opts: AieOptions = {}): Aie {
  if (!results.length) throw new FactlensError('averageIndirectEffects: no traces given');
  const kind = results[0].kind;
  if (results.some((r) => r.kind !== kind)) throw new FactlensError('averageIndirectEffects: traces of different kinds; average each kind separately');
  const layers = results[0].layers;
  const value = opts.value ?? 'ie';
  const used = value === 'ie' ? results.filter((r) => r.status === 'ok') : results;
  for (const r of used) {
    if (r.positions.length !== r.tokens.length || r.positions.some((p, i) => p !== i)) throw new FactlensError('averageIndirectEffects: traces must cover every token position');
    if (r.layers.join() !== layers.join()) throw new FactlensError('averageIndirectEffects: traces cover different layers');
  }
  const sums = AIE_GROUPS.map(() => layers.map(() => 0));
  const counts = AIE_GROUPS.map(() => layers.map(() => 0));
  for (const r of used) {
    const g = groupTokens(value === 'ie' ? r.ie : r.p, r.span);
    g.forEach((row, i) => row.forEach((x, l) => {
      if (opts.nan === 'skip' && Number.isNaN(x)) return;
      sums[i][l] += x;
      counts[i][l]++;
    }));
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return {
    kind, groups: AIE_GROUPS, layers, window: results[0].window,
    values: sums.map((row, i) => row.map((s, l) => (counts[i][l] ? s / counts[i][l] : NaN))),
    count: used.length, excluded: results.length - used.length,
    lowMean: mean(used.map((r) => r.low)), highMean: mean(used.map((r) => r.high)),
  };
}

/** Each informative prompt's IE in one token group at one layer (window centre): the values an AIE cell averages, for its uncertainty. */
export function promptEffectsAt(results: TraceResult[], group: string, layer: number): number[] {
  const g = AIE_GROUPS.indexOf(group);
  if (g < 0) throw new FactlensError(`promptEffectsAt: no group "${group}" (groups: ${AIE_GROUPS.join(', ')})`);
  const out: number[] = [];
  for (const r of results) {
    if (r.status !== 'ok') continue;
    const l = r.layers.indexOf(layer);
    if (l < 0) throw new FactlensError(`promptEffectsAt: layer ${layer} was not traced (layers ${r.layers[0]}..${r.layers[r.layers.length - 1]})`);
    const x = groupTokens(r.ie, r.span)[g][l];
    if (!Number.isNaN(x)) out.push(x);
  }
  return out;
}

/** The paper's "subtract" panel: AIE(o) − AIE(s) − AIE(g), per cell of the averaged maps. */
export function subtractAie(o: Aie, s: Aie, g: Aie): Aie {
  if (o.layers.join() !== s.layers.join() || o.layers.join() !== g.layers.join()) throw new FactlensError('subtractAie: maps cover different layers');
  return {
    ...o, kind: 'o − s − g',
    values: o.values.map((row, i) => row.map((x, l) => x - s.values[i][l] - g.values[i][l])),
    count: Math.min(o.count, s.count, g.count), excluded: Math.max(o.excluded, s.excluded, g.excluded),
  };
}

/** An AIE map as a long table: kind, group, layer, aie. */
export function aieTable(aies: Aie | Aie[]): Table {
  const rows: Array<Record<string, unknown>> = [];
  for (const a of Array.isArray(aies) ? aies : [aies]) {
    a.groups.forEach((group, i) => a.layers.forEach((layer, l) => rows.push({ kind: a.kind, group, layer, aie: a.values[i][l] })));
  }
  return aq.from(rows);
}

/** Where a map peaks in one group: the layer (or window centre) and its value. */
export function peak(aie: Aie, group: string): { layer: number; value: number } {
  const i = aie.groups.indexOf(group);
  if (i < 0) throw new FactlensError(`peak: no group "${group}" (groups: ${aie.groups.join(', ')})`);
  let best = { layer: NaN, value: -Infinity };
  aie.values[i].forEach((v, l) => {
    if (v > best.value) best = { layer: aie.layers[l], value: v };
  });
  return best.value === -Infinity ? { layer: NaN, value: NaN } : best;
}
