/**
 * Reading the edited matrix's input (key) and output (value) at the subject's last token, and the
 * ROME key k̄ = mean over context templates of the key at the subject's last token (§3.3 step 2).
 */
import type { Model } from '../../runtime/model';
import { makeBatch } from '../../runtime/batch';
import type { EditSite } from './sites';
import { subjectTokens, SubjectTokens } from './subject';

/** One prompt row of a batch and the position read or edited in it. */
export interface LookupRow {
  ids: number[];
  lookup: number;
}

/** Rows for context templates ("….{}") wrapped around a request template ("{} is in"). */
export function contextRows(model: Model, contexts: string[], template: string, subject: string): SubjectTokens[] {
  return contexts.map((c) => subjectTokens(model, c.replace('{}', () => template), subject));
}

/** Activations of hooks of layers ≤ `layer` at each row's lookup position (one forward pass up to the layer). */
export async function readHooks(model: Model, layer: number, hooks: string[], rows: LookupRow[]): Promise<Float32Array[][]> {
  const batch = makeBatch(rows.map((r) => r.ids), model.config.vocabSize, model.padId);
  const res = await model.run(batch, { untilLayer: layer + 1, cache: hooks, logits: 'none' });
  return hooks.map((hook) => {
    const t = res.cache.get(hook); // [B,T,W]
    const [, T, W] = t.shape;
    return rows.map((r, b) => t.data.slice((b * T + r.lookup) * W, (b * T + r.lookup + 1) * W));
  });
}

/** Key and value vectors of a site at each row's lookup position. */
export async function readSite(model: Model, site: EditSite, rows: LookupRow[]): Promise<{ keys: Float32Array[]; values: Float32Array[] }> {
  const [keys, values] = await readHooks(model, site.layer, [site.keyHook, site.valueHook], rows);
  return { keys, values };
}

export function meanVector(vs: Float32Array[]): Float32Array {
  const out = new Float32Array(vs[0].length);
  for (const v of vs) for (let i = 0; i < v.length; i++) out[i] += v[i] / vs.length;
  return out;
}

export interface KeyResult {
  /** k̄: mean key over the context templates. */
  kBar: Float32Array;
  /** Mean value (module output) over the same rows: W k̄ (+ b), used by the Rebuilding-ROME update. */
  vBar: Float32Array;
  keys: Float32Array[];
  rows: SubjectTokens[];
}

export async function computeKey(model: Model, site: EditSite, template: string, subject: string, contexts: string[]): Promise<KeyResult> {
  const rows = contextRows(model, contexts, template, subject);
  const { keys, values } = await readSite(model, site, rows.map((r) => ({ ids: r.ids, lookup: r.last })));
  return { kBar: meanVector(keys), vBar: meanVector(values), keys, rows };
}
