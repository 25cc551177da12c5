/**
 * The fixed part of the v* batch, computed once: layers before the edited one never change with δ,
 * so every optimisation pass starts at the edited layer from their residual stream. On Mamba, also
 * the tokens before each row's lookup position cannot change (δ is added there), so their recurrent
 * state is computed once and passes run only the remaining tokens (same numbers, fewer tokens).
 * `gatherRows` then picks any subset of the rows (the requests still optimising) for one pass.
 */
import { Batch, makeBatch } from '../../runtime/batch';
import type { MambaState, RunOptions } from '../../runtime/forward';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import type { LookupRow } from './key';

export interface StartRows<R extends LookupRow> {
  /** The rows as the passes see them: `cut` tokens removed from the front (Mamba), lookup moved to match. */
  rows: Array<R & { cut: number }>;
  /** Residual stream entering the edited layer at the rows' positions [B,T,D] (null: start at the embedding). */
  resid: Tensor | null;
  /** Mamba: recurrent state after each row's cut-off prefix (null: no cut). */
  state: MambaState | null;
  layer: number;
}

export async function startRows<R extends LookupRow>(model: Model, layer: number, rows: R[], prefixState: boolean): Promise<StartRows<R>> {
  const full = makeBatch(rows.map((r) => r.ids), model.config.vocabSize, model.padId);
  const pre = layer > 0 ? (await model.run(full, { untilLayer: layer, logits: 'none' })).residual : model.embed(full); // [B,T,D]
  if (model.arch === 'mamba' && prefixState && rows.some((r) => r.lookup > 0)) return splitAtLookup(model, layer, rows, pre);
  return { rows: rows.map((r) => ({ ...r, cut: 0 })), resid: layer > 0 ? pre : null, state: null, layer };
}

/**
 * Mamba: cut each row at its lookup position. The recurrent state after the tokens before it (every
 * layer from `layer` on) and the residual entering `layer` at the remaining positions let a run of
 * only the remaining tokens reproduce the full run exactly there.
 */
async function splitAtLookup<R extends LookupRow>(model: Model, layer: number, rows: R[], pre: Tensor): Promise<StartRows<R>> {
  const { dInner: E, dState: N, convKernel: K, dModel: D } = model.mambaConfig;
  const L = model.nLayers;
  const B = rows.length;
  const conv = Array.from({ length: L }, () => Tensor.zeros([B, K - 1, E])); // [B,K-1,E] per layer
  const ssm = Array.from({ length: L }, () => Tensor.zeros([B, E, N])); // [B,E,N] per layer
  const byLength = new Map<number, number[]>();
  rows.forEach((r, b) => r.lookup > 0 && byLength.set(r.lookup, [...(byLength.get(r.lookup) ?? []), b]));
  for (const [len, members] of byLength) {
    const prefixes = makeBatch(members.map((b) => rows[b].ids.slice(0, len)), model.config.vocabSize, model.padId);
    const st = (await model.run(prefixes, { returnState: true, logits: 'none' })).state!;
    for (let l = layer; l < L; l++) {
      members.forEach((b, i) => {
        conv[l].data.set(st.conv[l].at(i).data, b * (K - 1) * E);
        ssm[l].data.set(st.ssm[l].at(i).data, b * E * N);
      });
    }
  }
  const cut = rows.map((r) => ({ ...r, ids: r.ids.slice(r.lookup), lookup: 0, cut: r.lookup }));
  const T = pre.shape[1];
  const T2 = Math.max(...cut.map((r) => r.ids.length));
  const resid = Tensor.zeros([B, T2, D]); // [B,T',D]
  rows.forEach((r, b) => resid.data.set(pre.data.subarray((b * T + r.lookup) * D, (b * T + r.ids.length) * D), b * T2 * D));
  return { rows: cut, resid, state: { conv, ssm }, layer };
}

/** The batch and run options of one pass over the rows at `which` (in that order). */
export function gatherRows<R extends LookupRow>(model: Model, start: StartRows<R>, which: number[]): { rows: Array<R & { cut: number }>; batch: Batch; run: RunOptions } {
  const rows = which.map((b) => start.rows[b]);
  const batch = makeBatch(rows.map((r) => r.ids), model.config.vocabSize, model.padId);
  if (!start.resid) return { rows, batch, run: {} };
  const resid = pickRows(start.resid, which, batch.T); // [B',T',D]
  const run: RunOptions = { startAt: { layer: start.layer, resid } };
  if (start.state) run.state = { conv: start.state.conv.map((t) => pickRows(t, which)), ssm: start.state.ssm.map((t) => pickRows(t, which)) };
  return { rows, batch, run };
}

/** Rows `which` of t [B,T,...], keeping the first `T` positions (default all). */
function pickRows(t: Tensor, which: number[], T = t.shape[1]): Tensor {
  const inner = t.stride(1);
  const out = Tensor.zeros([which.length, T, ...t.shape.slice(2)]); // [B',T,...]
  which.forEach((b, i) => out.data.set(t.at(b).data.subarray(0, T * inner), i * T * inner));
  return out;
}
