/**
 * Causal-tracing figures in ROME's and the paper's style: tokens top to bottom, layers left to
 * right, corrupted (subject) tokens starred, one colour scale per kind of state (residual Purples,
 * s Reds, g Greens, o Blues; Pythia MLP Greens, attention Reds), relative recovery from 0.
 */
import { heatmap } from '../../viz/heatmap';
import { subplots } from '../../viz/subplots';
import type { Figure } from '../../viz/figure';
import type { StateKind } from '../../viz/colors';
import type { Arch } from '../../runtime/hooks';
import { Aie, AIE_SUBJECT_ROWS } from './aie';
import { kindInfo, TraceKind } from './kinds';
import type { TraceResult } from './trace';
import type { EffectStatus } from './effects';

export interface TraceFigureOptions {
  /** Plot IE (relative recovery, default) or the raw restored p(answer). */
  value?: 'ie' | 'p';
  zmax?: number;
  title?: string;
  width?: number;
  height?: number;
  /** For panels in a row: short axis title, a tick every 5 layers on deep models. */
  compact?: boolean;
}

function xTitle(window: number, compact?: boolean): string {
  if (compact) return window > 1 ? `window centre (${window} layers)` : 'layer';
  return window > 1 ? `center of interval of ${window} restored layers` : 'single restored layer';
}

function compacted(fig: Figure, nLayers: number, compact?: boolean): Figure {
  if (compact && nLayers > 10) fig.layout.xaxis = { ...fig.layout.xaxis, dtick: 5 };
  return fig;
}

function vizKind(arch: Arch | undefined, kind: string): StateKind {
  if (kind === 'o − s − g') return 'diff';
  for (const a of arch ? [arch] : (['mamba', 'gpt_neox'] as Arch[])) {
    try {
      return kindInfo(a, kind as TraceKind).viz;
    } catch {
      // try the other architecture
    }
  }
  return 'residual';
}

/** Heatmap of one prompt's trace (one kind). */
export function traceHeatmap(r: TraceResult, opts: TraceFigureOptions = {}): Figure {
  const value = opts.value ?? 'ie';
  const tokens = r.positions.map((p) => r.tokens[p].replace(/<\|endoftext\|>/g, '<EOS>'));
  const subject = r.positions.filter((p) => p >= r.span[0] && p < r.span[1]).map((p) => r.positions.indexOf(p));
  const corrupted = r.altSubject ? `${JSON.stringify(r.subject)} → ${JSON.stringify(r.altSubject)}` : `${JSON.stringify(r.subject)} + noise`;
  return compacted(heatmap({
    values: value === 'ie' ? r.ie : r.p,
    tokens,
    layers: r.layers,
    subject,
    kind: vizKind(undefined, r.kind),
    metric: value === 'ie' ? 'IE' : `p(${r.answer.trim()})`,
    zmin: 0,
    zmax: opts.zmax,
    xTitle: xTitle(r.window, opts.compact),
    title: opts.title ?? `${r.label}: ${corrupted}, answer ${JSON.stringify(r.answer.trim())}`,
    width: opts.width,
    height: opts.height,
  }), r.layers.length, opts.compact);
}

/** Every kind of one prompt side by side (ROME's row of residual / MLP / attention panels). */
export function traceHeatmaps(results: TraceResult[], opts: TraceFigureOptions & { cols?: number } = {}): Figure {
  const figs = results.map((r) => traceHeatmap(r, { ...opts, title: r.label, compact: opts.compact ?? results.length > 2 }));
  const r0 = results[0];
  const flag = r0.status === 'ok' ? '' : ` — ${r0.status.toUpperCase()}: ${STATUS_NOTE[r0.status]}, IE undefined`;
  const title = opts.title ?? `${r0.prompt} → ${JSON.stringify(r0.answer.trim())} (p ${r0.high.toFixed(2)} clean, ${r0.low.toFixed(2)} corrupted)${flag}`;
  return subplots(figs, { cols: opts.cols, title, width: opts.width, height: opts.height });
}

/** Why a trace has no IE, for figure titles. */
const STATUS_NOTE: Record<Exclude<EffectStatus, 'ok'>, string> = {
  'not-known': 'the clean answer is not the object',
  'small-gap': 'the corruption does not lower p(answer) by the threshold',
  inverted: 'the corruption raises p(answer)',
};

/** Heatmap of an AIE map: romba's six token groups × layers. */
export function aieHeatmap(aie: Aie, opts: TraceFigureOptions & { arch?: Arch; label?: string } = {}): Figure {
  const diff = aie.kind === 'o − s − g';
  return compacted(heatmap({
    values: aie.values,
    tokens: aie.groups,
    layers: aie.layers,
    subjectRange: AIE_SUBJECT_ROWS,
    kind: vizKind(opts.arch, aie.kind),
    metric: opts.value === 'p' ? 'mean p' : 'AIE',
    zmin: diff ? undefined : 0,
    zmax: opts.zmax,
    xTitle: xTitle(aie.window, opts.compact),
    title: opts.title ?? `AIE of ${opts.label ?? aie.kind} over ${aie.count} prompts`,
    width: opts.width,
    height: opts.height,
  }), aie.layers.length, opts.compact);
}
