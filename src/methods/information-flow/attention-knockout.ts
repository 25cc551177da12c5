/**
 * Attention knockout in GPT-NeoX / Pythia (Geva et al. 2023, "Dissecting Recall of Factual
 * Associations"): in every layer of a window of k layers around ℓ, cut the attention edges from the
 * last token to the source positions in every head by setting their pre-softmax scores (hook
 * attn.scores, [B,H,T,T]) to −1e9. Sources as for Mamba: subject, subj_last, non_subject (the EOS
 * prefix included), prompt_last (the last token to itself). Metric: relative change in p(o).
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { FactPrompt } from './prompts';
import { recordRuns, RowEdit } from './runner';
import { keyIndex, RowOffset } from '../../runtime/row-engine';
import { KnockoutOptions, knockoutTable, Table } from './mamba-knockout';

export const CUT_SCORE = -1e9;

/** Edits that cut query → key edges (absolute positions) in every head at the given layers ([H,T,K] views of attn.scores). */
export function attentionKnockoutEdits(layers: number[], query: number, keys: number[]): RowEdit[] {
  return layers.map((l) => ({
    hook: `layers.${l}.attn.scores`,
    apply: (view: Float32Array, shape: number[], at: RowOffset) => {
      const [H, T, K] = shape; // K = T, or cached slots + T in a resumed row
      const q = query - at.offset;
      for (let h = 0; h < H; h++) for (const key of keys) view[(h * T + q) * K + keyIndex(key, at)] = CUT_SCORE;
    },
  }));
}

/**
 * One row per (prompt, source set, window centre), as mambaKnockout. Default window k = 10 (Geva used 9).
 * Only the last token's attention is cut, so every row runs that one token, from the clean run's
 * keys/values of the others (exact: kv-past.ts).
 */
export async function attentionKnockout(model: Model, prompts: FactPrompt[], opts: KnockoutOptions = {}): Promise<Table> {
  if (model.recurrent) throw new FactlensError(`attentionKnockout needs an attention model; ${model.name} is ${model.arch} (use mambaKnockout)`);
  const clean = await recordRuns(model, prompts.map((p) => p.ids), ['resid_pre'], { batchSize: opts.batchSize, carries: true });
  return knockoutTable(model, prompts, opts, (p, i, positions, layers) => ({
    ids: p.ids, target: p.answer, startLayer: layers[0], prefix: (l) => clean[i].acts.get('resid_pre')![l],
    resume: { position: p.ids.length - 1, carry: (l) => clean[i].carry!(l, p.ids.length - 1) },
    edits: attentionKnockoutEdits(layers, p.ids.length - 1, positions),
  }));
}
