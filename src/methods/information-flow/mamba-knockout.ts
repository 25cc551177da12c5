/**
 * The paper's Mamba "attention-knockout" analogue (paper-spec §5.2, romba retention_knockout.py) and
 * its exact counterpart.
 *
 * method 'mean' (the paper): in every layer of a window of k layers around ℓ, set a_t := mean_ℓ (the
 * corpus mean of a = mixer.x) at the source positions, clamp every other non-final position to its
 * clean a_t, and let the last position compute freely. This also changes the sources' own outputs,
 * and the mean vector is injected rather than the tokens removed.
 * method 'exact' (and 'exact+slots', 'retention'): path blocking (path-blocking.ts) of the sources into
 * the last token's Conv+SSM output in the same layers; nothing else is touched, no clamping needed
 * (with targets 'others': into every non-source position).
 *
 * Mamba-2: the same, with a = its mixer.x (the x part of in_proj, the conv input) and path blocking
 * through its conv and SSD scan.
 *
 * Metric: relative change (p_knock(o) − p_clean(o)) / p_clean(o) of the clean answer o at the last token.
 */
import * as aq from 'arquero';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import type { BlockMode } from './reference';
import { FactPrompt, SOURCE_SETS, SourceSet, sourcePositions } from './prompts';
import { recordRuns, runVariants, Variant } from './runner';
import { layerWindow } from '../../runtime/interventions';
import { ssmLayout } from '../../models/ssm';
import { checkpointedRows, CheckpointOption } from '../../runtime/run-log';
import { runSettings, unitKey } from '../../runtime/run-settings';

export type Table = ReturnType<typeof aq.from>;

export interface KnockoutOptions {
  /** Layers per window (default 10, romba's [ℓ−5, ℓ+5)). */
  window?: number;
  /** Window centres (default every layer). */
  centers?: number[];
  sets?: SourceSet[];
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * A run-log file (see runtime/run-log.ts): the rows of each finished group of 4 prompts are
   * appended durably, and a rerun with the same path and settings resumes with the missing prompts.
   */
  checkpoint?: CheckpointOption;
  /** Stops before the next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

export interface MambaKnockoutOptions extends KnockoutOptions {
  /** 'mean' = the paper's mean ablation of a (needs `means`); otherwise a path-blocking mode. */
  method?: 'mean' | BlockMode;
  /** [L,E] mean of mixer.x per layer (meanActivations). */
  means?: Tensor;
  /**
   * Path-blocking methods only: block the sources into the last token (default, the knockout's edges) or
   * into every other position ('others': the sources are cut off from every non-source token in the
   * window, indirect paths through the tokens in between included, while their own computation stays).
   */
  targets?: 'last' | 'others';
}

/** One row per (prompt, source set, window centre): prompt, relation, subject, set, layer, p, pClean, change. */
export async function mambaKnockout(model: Model, prompts: FactPrompt[], opts: MambaKnockoutOptions = {}): Promise<Table> {
  const layout = ssmLayout(model.config);
  if (!layout) throw new FactlensError(`mambaKnockout needs a Mamba-1 or Mamba-2 model; ${model.name} is ${model.arch} (use attentionKnockout)`);
  const method = opts.method ?? 'mean';
  const E = layout.dInner; // width of mixer.x, the conv input a (Mamba-2: the x part of in_proj)
  if (method === 'mean' && (!opts.means || opts.means.shape.join() !== [model.nLayers, E].join())) {
    throw new FactlensError(`mambaKnockout with method 'mean' needs means of shape [${model.nLayers},${E}] (see meanActivations)`);
  }
  const clean = await recordRuns(model, prompts.map((p) => p.ids), method === 'mean' ? ['resid_pre', 'mixer.x'] : ['resid_pre'], { batchSize: opts.batchSize });
  return knockoutTable(model, prompts, opts, (p, i, positions, layers) => {
    const T = p.ids.length;
    const variant: Variant = { ids: p.ids, target: p.answer, startLayer: layers[0], prefix: (l) => clean[i].acts.get('resid_pre')![l] };
    if (method === 'mean') {
      const src = new Set(positions);
      variant.edits = layers.map((l) => ({
        hook: `layers.${l}.mixer.x`,
        apply: (view: Float32Array) => {
          const mean = opts.means!.data.subarray(l * E, (l + 1) * E);
          const a = clean[i].acts.get('mixer.x')![l];
          for (let t = 0; t < T; t++) {
            if (src.has(t)) view.set(mean, t * E);
            else if (t < T - 1) view.set(a.subarray(t * E, (t + 1) * E), t * E); // clamp to clean
          }
        },
      }));
    } else {
      const targets = opts.targets === 'others' ? [...Array(T).keys()].filter((t) => !positions.includes(t)) : 'last';
      variant.blocks = [{ layers, targets, sources: positions, mode: method }];
    }
    return variant;
  });
}

/** The shared grid of knockout experiments: prompts × source sets × window centres. */
export async function knockoutTable(
  model: Model,
  prompts: FactPrompt[],
  opts: KnockoutOptions,
  variantFor: (p: FactPrompt, index: number, positions: number[], layers: number[]) => Variant,
): Promise<Table> {
  const sets = opts.sets ?? SOURCE_SETS;
  const k = opts.window ?? 10;
  const centers = opts.centers ?? [...Array(model.nLayers).keys()];
  // Units: prompts (each with its sets × centres rows); checkpointed, in fixed groups of 4 prompts, else all in one go.
  const settings = () => runSettings(model, { ...opts, sets, window: k, centers }, prompts);
  const group = opts.checkpoint ? 4 : prompts.length;
  const perPrompt = await checkpointedRows(opts.checkpoint, 'informationFlow.knockout', settings, prompts.map((p, i) => unitKey(i, p.subject)), group, async (indices) => {
    const rows: Array<Array<Record<string, unknown>>> = indices.map(() => []);
    const variants: Variant[] = [];
    indices.forEach((i, g) => {
      const p = prompts[i];
      for (const set of sets) {
        const positions = sourcePositions(set, p.subjectRange, p.ids.length);
        for (const layer of centers) {
          rows[g].push({ prompt: i, relation: p.relation, subject: p.subject, set, layer, pClean: p.pClean });
          variants.push(variantFor(p, i, positions, layerWindow(layer, k, model.nLayers)));
        }
      }
    });
    const ps = await runVariants(model, variants, { batchSize: opts.batchSize, onProgress: opts.onProgress, signal: opts.signal });
    rows.flat().forEach((r, j) => {
      r.p = ps[j];
      r.change = (ps[j] - (r.pClean as number)) / (r.pClean as number);
    });
    return rows;
  });
  return aq.from(perPrompt.flat());
}
