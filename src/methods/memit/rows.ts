/**
 * Batched reads for many edit requests at once: the keys k̄ (mean over context templates of the
 * edited matrix's input at the subject's last token) and any hook at the bare prompts' subject
 * token. Rows run in chunks so that a batch of hundreds of requests never becomes one huge batch.
 */
import type { Model } from '../../runtime/model';
import type { NormalizedRequest } from '../rome/edit';
import { contextRows, LookupRow, meanVector, readHooks } from '../rome/key';
import type { EditSite } from '../rome/sites';
import { subjectTokens } from '../rome/subject';

/** Prompt rows per forward pass. */
const ROWS_PER_RUN = 256;

/** One hook's activation at each row's lookup position, `ROWS_PER_RUN` rows per run. */
export async function readHookRows(model: Model, layer: number, hook: string, rows: LookupRow[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_RUN) {
    const [vs] = await readHooks(model, layer, [hook], rows.slice(i, i + ROWS_PER_RUN));
    out.push(...vs);
  }
  return out;
}

/** The bare prompt of each request, looked up at the subject's last token. */
export function bareRows(model: Model, requests: NormalizedRequest[]): LookupRow[] {
  return requests.map((r) => {
    const st = subjectTokens(model, r.template, r.subject);
    return { ids: st.ids, lookup: st.last };
  });
}

/** k̄ of every request at a site (MEMIT's compute_ks): one [keyDim] vector per request. */
export async function templateKeys(model: Model, site: EditSite, requests: NormalizedRequest[], templates: string[]): Promise<Float32Array[]> {
  const rows = requests.flatMap((r) => contextRows(model, templates, r.template, r.subject).map((st): LookupRow => ({ ids: st.ids, lookup: st.last })));
  const keys = await readHookRows(model, site.layer, site.keyHook, rows);
  return requests.map((_, j) => meanVector(keys.slice(j * templates.length, (j + 1) * templates.length)));
}
