// Source of notebooks/06-mass-editing.ipynb: edit this file, then `npm run build-notebooks`.

// %% [markdown]
// # Mass editing: MEMIT and EMMET on Mamba and Pythia
//
// ROME (notebook 02) writes one fact into one matrix. **MEMIT** (Meng et al. 2023, "Mass-Editing Memory
// in a Transformer") writes many at once: each request gets a target z at the residual stream after the
// last layer of a range (ROME's v* optimisation), and the layers of the range then share the missing
// residual, each with one least-squares update ΔW = R Kᵀ (λC + K Kᵀ)⁻¹ over all the batch's keys K and
// residuals R, where C = E[k kᵀ] is the same key statistics ROME uses. **EMMET** (Gupta et al. 2024)
// replaces the soft trade-off by the equality constraint ΔW K = R. Method notes: `docs/memit.md`.
//
// The questions: how many facts can Mamba's `W_o` take at once compared with a transformer's MLP
// (`W_down` in Pythia), and how does a batched edit compare with ROME applied fact after fact? We run on
// the bundled demo models `mamba-facts` (16 layers) and `neox-facts` (8 layers, Pythia's architecture).
// The default run edits 20 known records per model (batch sizes 1, 5 and 20; layer ranges on 10);
// `FACTLENS_NB_QUICK=1` (the test suite's setting) 6, only to check that the cells run;
// `FACTLENS_NB_FULL=1` every known record at batch sizes 1, 10, 100 and all, with the paper's v* settings.
// `tools/memit-known-records.ts` runs the all-known-records curve without the notebook (docs/memit.md §7).

// %%
import { Model } from '../src';
import { CounterFactRecord, knownRecords, loadCounterFact } from '../src/data/counterfact';
import { loadRelations } from '../src/data/relations';
import { knownFacts } from '../src/data/known-facts';
import { averageByKind, peak, roundRobin, scaledWindow, traceFacts } from '../src/methods/causal-tracing';
import { defaultLayer, EDIT_MATRICES, editSite, scoreCase, scoresText, scoreS, sDifference, secondMoments, summarize, RomeOptions } from '../src/methods/rome';
import { defaultLayers, scalingCurve, scalingFigure, ScalingCase, ScalingRow, scaledUpdateWeight } from '../src/methods/memit';
import { markdown, showFigure, showTable } from '../src/viz';
import { round } from '../src/stats';

const FULL = process.env.FACTLENS_NB_FULL === '1';
const QUICK = !FULL && process.env.FACTLENS_NB_QUICK === '1';
/** Tokens of WikiText-2 for C = E[kkᵀ] (MEMIT: 100,000 Wikipedia articles). */
const STATS = { samples: FULL ? 100_000 : QUICK ? 5_000 : 20_000, maxLength: 256 };
/** v* settings: the paper's in FULL; otherwise 5 context templates and 8 steps. */
const VALUE: RomeOptions = FULL ? {} : { templates: { lengths: [[5, 2], [10, 2]] }, steps: 8 };
/** Known records edited per model (FULL: every known record of the bundled 500). */
const N_RECORDS = FULL ? Infinity : QUICK ? 6 : 20;
/** Batch sizes of the scaling curve (FULL adds "all known records"). */
const batchSizes = (n: number) => (FULL ? [1, 10, 100, n] : QUICK ? [1, 3, 6] : [1, 5, n]).filter((b, i, all) => b <= n && all.indexOf(b) === i);
/** Records of the layer-range comparison (each range optimises its own targets). */
const N_RANGE = FULL ? 100 : QUICK ? 6 : 10;
/** Known facts traced per model to pick the layer range. */
const N_TRACE = FULL ? 100 : QUICK ? 4 : 20;
/** Generation checks (fluency, consistency) on this many edited records per batch size. */
const GENERATION = { prompts: QUICK ? 2 : 5, maxNewTokens: 20 };
const GEN_RECORDS = QUICK ? 2 : 5;

const t0 = Date.now();
const mamba = await Model.load('../data/models/mamba-facts');
const neox = await Model.load('../data/models/neox-facts');
const models = [mamba, neox];
const counterfact = loadCounterFact();
const known = new Map<string, CounterFactRecord[]>();
for (const m of models) known.set(m.name, await knownRecords(m, counterfact));
const records = new Map(models.map((m) => [m.name, known.get(m.name)!.slice(0, N_RECORDS)]));
markdown(models.map((m) => `- **${m.name}** knows ${known.get(m.name)!.length} of the ${counterfact.length} bundled CounterFact records; ` +
  `this run edits ${records.get(m.name)!.length}. MEMIT's λ here: ${scaledUpdateWeight(m.arch === 'mamba' ? m.mambaConfig.dInner : m.neoxConfig.dFF).toFixed(0)} ` +
  `(GPT-J's 15,000 scaled to the ${m.arch === 'mamba' ? 'W_o' : 'W_down'} key dimension, docs/memit.md §3).`).join('\n'));

// %% [markdown]
// ## 1. Which layers: causal tracing's site
//
// MEMIT edits the layers where causal tracing finds the subject's last token mattering most through the
// edited module: GPT-J's MLP effect peaks around layer 8, and MEMIT edits layers 3–8. We trace a few known
// facts (notebook 01 does this at length) and read where the average indirect effect of restoring a window
// of the block output o (Mamba) or of the MLP output (Pythia) peaks at the subject's last token.

// %%
const tracing = new Map<string, { layer: number; value: number }>();
for (const m of models) {
  const facts = await knownFacts(m, loadRelations(), { limit: 12, batchSize: 32 });
  const traces = await traceFacts(m, roundRobin(facts, N_TRACE), { pool: facts, seed: 0, window: scaledWindow(m.arch, m.nLayers) });
  const aie = averageByKind(m, traces).find((a) => a.kind === (m.arch === 'mamba' ? 'out' : 'mlp'))!;
  tracing.set(m.name, peak(aie, 'subject_last'));
}
showTable(models.map((m) => ({
  model: m.name, 'traced facts': N_TRACE, 'peak layer (window centre)': tracing.get(m.name)!.layer, 'peak AIE': tracing.get(m.name)!.value,
  "ROME's default layer": defaultLayer(m), 'MEMIT default range': defaultLayers(m).join(','),
})), { title: 'Where the subject\'s last token matters (o / MLP output) and the layers edited' });

// %% [markdown]
// ## 2. Layer ranges
//
// With the batch fixed (the first records of this run, all at once), MEMIT over ranges of the default length ending
// at different layers: early, the default (ending at ROME's layer, the paper's 15 of 64 / 32 scaled),
// the traced peak, and the last layer. Ranges ending late should lose generalisation (PS), as ROME does.

// %%
const rangeRows: ScalingRow[] = [];
const rangeCases = new Map<string, ScalingCase[]>(); // by `${model}|${layers}`, sorted by record
for (const m of models) {
  const len = defaultLayers(m).length;
  const ends = [...new Set([len - 1, defaultLayer(m), Math.max(len - 1, Math.round(tracing.get(m.name)!.layer)), m.nLayers - 1])].sort((a, b) => a - b);
  const recs = records.get(m.name)!.slice(0, N_RANGE);
  // C for every layer any range uses, in one pass over the corpus (the runs below read it from memory).
  await secondMoments(m, [...new Set(ends.flatMap((e) => Array.from({ length: len }, (_, i) => e - len + 1 + i)))].map((l) => editSite(m, l)), { ...STATS, progress: false });
  for (const end of ends) {
    const layers = Array.from({ length: len }, (_, i) => end - len + 1 + i);
    const res = await scalingCurve(m, recs, { ...VALUE, layers, batchSizes: [recs.length], methods: ['memit'], stats: STATS, progress: false });
    rangeRows.push(...res.rows);
    rangeCases.set(`${m.name}|${layers.join(',')}`, [...res.cases].sort((a, b) => a.caseId - b.caseId));
  }
}
showTable(rangeRows.map((r) => ({ model: r.model, matrix: r.matrix, layers: r.layers, 'edits at once': r.batchSize, ES: r.ES, PS: r.PS, NS: r.NS, S: r.S })), { title: 'MEMIT by layer range' });
const bestRange = new Map(models.map((m) => {
  const rows = rangeRows.filter((r) => r.model === m.name);
  return [m.name, rows.reduce((a, b) => (b.S > a.S ? b : a))];
}));
const sText = (cases: ScalingCase[]) => {
  const s = scoreS(cases);
  return `S ${round(s.S)} [${round(s.lo)}, ${round(s.hi)}] (n = ${s.n})`;
};
markdown(models.map((m) => {
  const best = bestRange.get(m.name)!;
  const byDefault = defaultLayers(m).join(',');
  const bestCases = rangeCases.get(`${m.name}|${best.layers}`)!;
  const defaultCases = rangeCases.get(`${m.name}|${byDefault}`)!;
  if (best.layers === byDefault) return `**${m.name}**: the default range ${byDefault} is also the best here (${sText(bestCases)}, ${best.batchSize} edits at once; 95 % bootstrap intervals over records).`;
  const d = sDifference(bestCases, defaultCases);
  const verdict = d.lo > 0 ? 'clearly better at this n' : 'no clear difference at this n (the paired interval includes 0)';
  return `**${m.name}**: the best range here is layers ${best.layers} (${sText(bestCases)}, ${best.batchSize} edits at once); the default ${byDefault} gives ${sText(defaultCases)}. ` +
    `Best − default, paired over the same records: ${round(d.diff)} [${round(d.lo)}, ${round(d.hi)}]: ${verdict}. (95 % bootstrap intervals over records.)`;
}).join('\n\n'));

// %% [markdown]
// ## 3. The scaling curve: MEMIT vs sequential ROME, Mamba vs Pythia
//
// For each batch size b the records are cut into batches of b; each batch is edited into the unedited
// model at once and each record is scored on its own batch's model, so every point scores the same
// records. Sequential ROME applies a batch's edits one after another at the range's last layer.
// Each record's MEMIT target does not depend on the batch, so it is optimised once and shared.

// %%
const scaleRows: ScalingRow[] = [];
const scaleCases = new Map<string, ScalingCase[]>();
const pre = new Map<string, ReturnType<typeof summarize>>();
for (const m of models) {
  const recs = records.get(m.name)!;
  const cases = [];
  for (const r of recs) cases.push(await scoreCase(m, r));
  pre.set(m.name, summarize(cases));
  const res = await scalingCurve(m, recs, {
    ...VALUE, batchSizes: batchSizes(recs.length), methods: ['memit', 'emmet', 'rome-sequential'], stats: STATS,
    generation: GENERATION, generationRecords: GEN_RECORDS,
  });
  scaleRows.push(...res.rows);
  scaleCases.set(m.name, res.cases);
}
showFigure(scalingFigure(scaleRows, { title: 'CounterFact scores vs number of facts edited at once' }));
showTable(scaleRows.map((r) => ({
  model: r.model, matrix: r.matrix, method: r.method, layers: r.layers, 'edits at once': r.batchSize, batches: r.batches,
  ES: r.ES, PS: r.PS, NS: r.NS, S: r.S, EM: r.EM, PM: r.PM, NM: r.NM, fluency: r.fluency, 'mentions new %': r.mentionsNew, 's / batch': r.secondsPerBatch,
})), { title: 'Scaling: every row scores the same records', limit: 40 });

// %% [markdown]
// ## 4. Every Mamba site
//
// W_a and W_g do not write into the residual stream (their output goes through the convolution, the
// scan and the gate), so MEMIT's residual cannot be shared across layers there; we edit them at ROME's
// layer alone, with the target at the matrix's own output (docs/memit.md §1), all records at once.

// %%
const siteRows: ScalingRow[] = [];
for (const matrix of EDIT_MATRICES[mamba.arch]) {
  const recs = records.get(mamba.name)!;
  const layers = matrix === 'W_o' ? defaultLayers(mamba) : [defaultLayer(mamba)];
  const res = await scalingCurve(mamba, recs, { ...VALUE, matrix, layers, batchSizes: [recs.length], methods: ['memit'], stats: STATS, progress: false });
  siteRows.push(...res.rows);
}
showTable(siteRows.map((r) => ({ model: r.model, matrix: r.matrix, layers: r.layers, 'edits at once': r.batchSize, ES: r.ES, PS: r.PS, NS: r.NS, S: r.S, EM: r.EM, PM: r.PM, NM: r.NM })), { title: 'MEMIT on each Mamba matrix' });

// %% [markdown]
// ## 5. Summary

// %%
const at = (m: Model, method: string, b: number) => scaleRows.find((r) => r.model === m.name && r.method === method && r.batchSize === b);
const f1 = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(1));
/** ES / PS / NS of one (method, batch size) point with standard errors over its records: "ES 86.0 ± 4.9 (n = 50)". */
const scoresAt = (m: Model, method: string, b: number) => {
  const cs = scaleCases.get(m.name)!.filter((c) => c.method === method && c.batchSize === b);
  return cs.length ? scoresText(cs) : 'n/a';
};
const lines = models.map((m) => {
  const sizes = batchSizes(records.get(m.name)!.length);
  const lo = sizes[0], hi = sizes[sizes.length - 1];
  const p = pre.get(m.name)!;
  return `**${m.name}** (${m.arch === 'mamba' ? 'W_o' : 'W_down'}, layers ${defaultLayers(m).join(',')}): before editing, ES ${f1(p.ES)} / PS ${f1(p.PS)} / NS ${f1(p.NS)}. ` +
    `MEMIT with ${lo} edit at a time: ${scoresAt(m, 'memit', lo)} (S ${f1(at(m, 'memit', lo)?.S)}); ` +
    `with ${hi} at once: ${scoresAt(m, 'memit', hi)} (S ${f1(at(m, 'memit', hi)?.S)}). ` +
    `EMMET at ${hi}: S ${f1(at(m, 'emmet', hi)?.S)}. Sequential ROME over ${hi} edits: S ${f1(at(m, 'rome-sequential', hi)?.S)} ` +
    `(${f1(at(m, 'rome-sequential', hi)?.secondsPerBatch)} s per batch, against ${f1(at(m, 'memit', hi)?.secondsPerBatch)} s for MEMIT with its targets precomputed).`;
});
markdown([
  ...lines,
  `Caveats: 10M-parameter demo models; ${STATS.samples} WikiText-2 tokens for C; ${FULL ? "the paper's v* settings" : '5 context templates and 8 v* steps'}; ` +
  `${records.get(mamba.name)!.length} / ${records.get(neox.name)!.length} records (the MEMIT paper goes to 10,000 edits on GPT-J). ` +
  `± is the standard error over records${QUICK ? `; quick mode: with ${records.get(mamba.name)!.length} records a rate moves in steps of ${(100 / records.get(mamba.name)!.length).toFixed(0)} %, a smoke test, not a result` : ''}. ` +
  `The notebook ran in ${((Date.now() - t0) / 60000).toFixed(1)} minutes.`,
].join('\n\n'));
