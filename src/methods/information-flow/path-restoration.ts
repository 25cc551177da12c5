/**
 * The paper's path-blocking figure (paper-spec §5.1): in the alternative-subject-corrupted run, restore
 * the clean residual h_i^ℓ (the output of layer ℓ) at token i ∈ {subject last, prompt last}, and
 * optionally pin one component at token i in every later layer to its corrupted-run value, so that the
 * restored state cannot act through it. Mamba: s (mixer.ssm_out), g (mixer.gate), o (mixer.out);
 * GPT-NeoX: mlp (mlp.out), attn (attn.out). (romba pins all layers; below ℓ the pin is a no-op because
 * those values are already the corrupted ones, so runs start at layer ℓ.)
 * Metric: IE = (p − low)/(high − low), averaged over pairs per layer with no clipping.
 */
import * as aq from 'arquero';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { CorruptedPair } from './corruption';
import { recordRuns, RowEdit, runVariants, Variant } from './runner';
import type { RowOffset } from '../../runtime/row-engine';
import type { Table } from './mamba-knockout';

export type PinKind = 'none' | 's' | 'g' | 'o' | 'mlp' | 'attn';
export type RestoreToken = 'subject_last' | 'last';

export const PIN_HOOKS: Record<Exclude<PinKind, 'none'>, string> = { s: 'mixer.ssm_out', g: 'mixer.gate', o: 'mixer.out', mlp: 'mlp.out', attn: 'attn.out' };
export const PIN_LABELS: Record<PinKind, string> = { none: 'recovery', s: 's blocked', g: 'g blocked', o: 'o blocked', mlp: 'MLP blocked', attn: 'attention blocked' };

export interface RestorationOptions {
  tokens?: RestoreToken[];
  /** Default: none, s, g, o (Mamba) or none, mlp, attn (GPT-NeoX). */
  pins?: PinKind[];
  /** Layers ℓ whose output is restored (default all). */
  layers?: number[];
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops before the next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

/** One row per (pair, token, pin, layer): pair, relation, token, pin, layer, p, high, low, ie. */
export async function pathRestoration(model: Model, pairs: CorruptedPair[], opts: RestorationOptions = {}): Promise<Table> {
  const mamba = model.recurrent;
  const pins = opts.pins ?? (mamba ? ['none', 's', 'g', 'o'] : ['none', 'mlp', 'attn']);
  for (const k of pins) {
    if (k !== 'none' && (k === 'mlp' || k === 'attn') === mamba) throw new FactlensError(`pin "${k}" does not exist in a ${model.arch} layer (use ${mamba ? 's, g, o' : 'mlp, attn'})`);
  }
  const tokens = opts.tokens ?? ['subject_last', 'last'];
  const layers = opts.layers ?? [...Array(model.nLayers).keys()];
  const pinLocals = pins.filter((k): k is Exclude<PinKind, 'none'> => k !== 'none').map((k) => PIN_HOOKS[k]);
  const clean = await recordRuns(model, pairs.map((p) => p.clean.ids), ['resid_post'], { batchSize: opts.batchSize });
  const corrupt = await recordRuns(model, pairs.map((p) => p.altIds), ['resid_pre', ...pinLocals], { batchSize: opts.batchSize, carries: true });
  const D = model.config.dModel;
  const rows: Array<Record<string, unknown>> = [];
  const variants: Variant[] = [];
  pairs.forEach((pair, i) => {
    for (const token of tokens) {
      const ic = token === 'last' ? pair.clean.ids.length - 1 : pair.clean.subjectRange[1] - 1;
      const ik = token === 'last' ? pair.altIds.length - 1 : pair.altSubjectRange[1] - 1;
      for (const pin of pins) {
        for (const layer of layers) {
          const restore: RowEdit = {
            hook: `layers.${layer}.resid_post`,
            apply: (view, _shape, at) => view.set(clean[i].acts.get('resid_post')![layer].subarray(ic * D, (ic + 1) * D), (ik - at.offset) * D),
          };
          const pinned: RowEdit[] = pin === 'none' ? [] : range(layer + 1, model.nLayers).map((l) => {
            const vals = corrupt[i].acts.get(PIN_HOOKS[pin])![l];
            const W = vals.length / pair.altIds.length;
            return { hook: `layers.${l}.${PIN_HOOKS[pin]}`, apply: (view: Float32Array, _shape: number[], at: RowOffset) => view.set(vals.subarray(ik * W, (ik + 1) * W), (ik - at.offset) * W) };
          });
          rows.push({ pair: i, relation: pair.clean.relation, token, pin: PIN_LABELS[pin], layer, high: pair.high, low: pair.low });
          // Nothing before token ik changes: the row runs from ik on, from the corrupted run's carry.
          variants.push({
            ids: pair.altIds, target: pair.clean.answer, edits: [restore, ...pinned], startLayer: layer, prefix: (l) => corrupt[i].acts.get('resid_pre')![l],
            resume: { position: ik, carry: (l) => corrupt[i].carry!(l, ik) },
          });
        }
      }
    }
  });
  const ps = await runVariants(model, variants, { batchSize: opts.batchSize, onProgress: opts.onProgress, signal: opts.signal });
  rows.forEach((r, j) => {
    r.p = ps[j];
    r.ie = (ps[j] - (r.low as number)) / ((r.high as number) - (r.low as number));
  });
  return aq.from(rows);
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}
