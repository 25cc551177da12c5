// Source of notebooks/02-rome.ipynb: edit this file, then `npm run build-notebooks`.

// %% [markdown]
// # ROME on Mamba and Pythia, with the CounterFact evaluation
//
// The second experiment of *Locating and Editing Factual Associations in Mamba* (Sen Sharma, Atkinson,
// Bau, COLM 2024; method notes in `docs/paper-spec.md` §3) applies **ROME** (Meng et al. 2022), a
// rank-one edit of one weight matrix, to Mamba. A transformer stores facts in its MLP down-projection
// W_down; a Mamba block has three candidate matrices: **W_a** (the x half of `in_proj`, feeding the
// Conv+SSM path), **W_g** (the gate half of `in_proj`) and **W_o** (`out_proj`).
//
// For a request (subject s, prompt template, new object o*), ROME
// 1. computes the **key** k̄: the edited matrix's input at the subject's last token, averaged over 21
//    short contexts the model itself samples;
// 2. optimises a **value** v* (Adam on a vector δ added to the matrix's output at that token) so the
//    model says o*, with a KL term that keeps "s is a" unchanged and a norm penalty;
// 3. inserts the pair with a rank-one update ΔW = (v* − W k)(C⁻¹k̄)ᵀ / ((C⁻¹k̄)ᵀ k), where C = E[k kᵀ]
//    is the keys' second moment over Wikipedia-like text.
//
// The notebook runs on the bundled demo models `mamba-facts` (16 layers) and `neox-facts` (8 layers,
// Pythia's architecture), 10M-parameter stand-ins for the 2.8B models. Read layer numbers as relative
// depth: the paper's layer 15 of 64 (Mamba) and 15 of 32 (Pythia) is layer 4 here.
//
// Sizes: the default run scores 50 known CounterFact records per model and sweeps every matrix at every
// other layer of mamba-facts and every layer of neox-facts with 10 records per point, with v* from 5
// context templates and 8 Adam steps (the single edit in §3 uses the paper's 21 and 20).
// `FACTLENS_NB_FULL=1` sweeps every layer with 20 records per point and scores 200 records with the
// paper's v* settings (the sweep alone took 10 minutes here at 20 records); `FACTLENS_NB_QUICK=1` (the
// test suite's setting) runs a few records, only to check that the cells run.

// %%
import { Model } from '../src';
import { CounterFactRecord, knownRecords, loadCounterFact } from '../src/data/counterfact';
import {
  contextTemplates, defaultLayer, EDIT_MATRICES, editSite, EditResult, evaluateEdits, generationCheck, greedyCompletions,
  lossTraceFigure, rome, RomeOptions, romeLayerSweep, scoreCase, scoresText, secondMoments, summarize, sweepFigure, SweepRow, topTokens,
} from '../src/methods/rome';
import { markdown, showFigure, showTable } from '../src/viz';

const FULL = process.env.FACTLENS_NB_FULL === '1';
const QUICK = !FULL && process.env.FACTLENS_NB_QUICK === '1';
/** Tokens of WikiText-2 for C = E[kkᵀ] (the paper: 100,000 Wikipedia articles; keys here have ≤ 1,024 dims). */
const STATS = { samples: FULL ? 100_000 : QUICK ? 5_000 : 20_000, maxLength: 256 };
/** Known CounterFact records edited and scored per model (the paper: 2,000). */
const N_CF = FULL ? 200 : QUICK ? 4 : 50;
/** v* settings for the CounterFact runs and the sweep: the paper's in FULL; otherwise 5 context templates and 8 steps. */
const EVAL: RomeOptions = FULL ? {} : { templates: { lengths: [[5, 2], [10, 2]] }, steps: 8 };
/** Generation checks per edited record: prompts and new tokens (ROME: 10 prompts, 100 tokens). */
const GENERATION = { prompts: QUICK ? 2 : 5, maxNewTokens: 20 };
/** Records per layer and the layers of the sweep (FULL: every layer; default: every other layer of models deeper than 8, and the last; quick: three). */
const SWEEP_RECORDS = FULL ? 20 : QUICK ? 2 : 10;
const sweepLayers = (m: Model) => {
  if (QUICK) return [0, defaultLayer(m), m.nLayers - 1];
  const step = FULL || m.nLayers <= 8 ? 1 : 2;
  return [...new Set([...Array.from({ length: Math.ceil(m.nLayers / step) }, (_, i) => i * step), m.nLayers - 1])];
};

const t0 = Date.now();
const mamba = await Model.load('../data/models/mamba-facts');
const neox = await Model.load('../data/models/neox-facts');
const models = [mamba, neox];
const LAYER = new Map(models.map((m) => [m.name, defaultLayer(m)]));
showTable(models.flatMap((m) => EDIT_MATRICES[m.arch].map((mat) => {
  const s = editSite(m, LAYER.get(m.name)!, mat);
  return { model: m.name, matrix: s.matrix, weight: s.weight, rows: `${s.rows[0]}:${s.rows[1]}`, 'key k (input)': `${s.keyHook} [${s.keyDim}]`, 'value v (output)': `${s.valueHook} [${s.valueDim}]` };
})), { title: 'The editable matrices (at the demo layer)' });

// %% [markdown]
// ## 1. Second moments of the keys
//
// C = E[k kᵀ] is the uncentred second moment of the edited matrix's input over text: the bundled
// WikiText-2 articles, streamed through the model up to the layer; Σ k kᵀ is accumulated chunk by
// chunk with an ONNX MatMul. One pass serves every site the notebook edits. The result is cached on
// disk (`.cache/factlens/stats/`, keyed by model weights, layer, key and sample count), so a second
// run of this notebook skips the pass; CI starts from a clean clone and computes it.

// %%
const allSites = (m: Model) => {
  const layers = [...new Set([LAYER.get(m.name)!, ...sweepLayers(m)])];
  return EDIT_MATRICES[m.arch].flatMap((mat) => layers.map((l) => editSite(m, l, mat)));
};
const statsRows: Record<string, unknown>[] = [];
for (const m of models) {
  const st = await secondMoments(m, allSites(m), STATS);
  for (const s of new Set(st)) {
    let tr = 0;
    for (let i = 0; i < s.dim; i++) tr += s.mom2[i * s.dim + i];
    statsRows.push({ model: m.name, key: s.key.keyHook, dim: s.dim, tokens: s.count, 'trace C': tr, ridge: (await s.factorize()).jitter, 'from cache': s.fromCache });
  }
}
showTable(statsRows, { title: `C = E[kkᵀ] over ${STATS.samples} WikiText-2 tokens`, limit: 40 });

// %% [markdown]
// ## 2. Context templates
//
// ROME averages the key over the bare prompt and 20 short texts the model samples from
// `<|endoftext|>` (top-5 sampling, 10 of 5 tokens and 10 of 10 tokens), each followed by ". {}".
// The demo models were trained on fact sentences and TinyStories, and their samples show it.

// %%
const templates = new Map<string, string[]>();
for (const m of models) templates.set(m.name, await contextTemplates(m));
showTable(templates.get(mamba.name)!.map((t, i) => ({ '#': i, 'mamba-facts': t, 'neox-facts': templates.get(neox.name)![i] })), { title: 'The 21 context templates', limit: 21 });

// %% [markdown]
// ## 3. One edit, step by step
//
// The request: *Big Ben is located in the city of* → **Rome** (both models say London). Mamba edits
// W_o and Pythia W_down, at the demo layer, with the paper's hyperparameters: Adam with lr 0.5 for at
// most 20 steps, KL factor 0.0625, weight decay 0.5, ‖δ‖ ≤ 3‖v_init‖.

// %%
const REQUEST = { prompt: '{} is located in the city of', subject: 'Big Ben', target: 'Rome' };
const edits = new Map<string, EditResult>();
for (const m of models) edits.set(m.name, await rome(m, REQUEST, { layer: LAYER.get(m.name), stats: STATS }));
showFigure(lossTraceFigure(models.map((m) => ({ label: `${m.name}, ${edits.get(m.name)!.site.matrix} at layer ${LAYER.get(m.name)}`, trace: edits.get(m.name)!.diagnostics.trace })), { title: 'v* optimisation: loss terms per step' }));
showTable(models.map((m) => {
  const d = edits.get(m.name)!.diagnostics;
  const last = d.trace[d.trace.length - 1];
  return {
    model: m.name, site: `${edits.get(m.name)!.site.matrix}@L${LAYER.get(m.name)}`, 'subject tokens': d.subjectTokens.tokens.join('|'), steps: d.trace.length, stop: d.stopReason,
    'NLL first → last': `${d.trace[0].nll.toFixed(2)} → ${last.nll.toFixed(3)}`, 'p(target)': last.prob, '‖v_init‖': d.vInitNorm, '‖δ‖': d.deltaNorm,
    'uᵀk': d.uDotK, '‖ΔW‖': d.updateNorm, '‖W‖': d.weightNorm, 'seconds': d.seconds.total,
  };
}), { title: 'Edit diagnostics' });

// %% [markdown]
// ### Before and after
//
// The edited model is a view: `rome` returns `e.model`, and the original object is untouched, so
// restoring the model is simply using it again. The rewrite prompt, a paraphrase, and unrelated
// facts (one of the same relation, two of others):

// %%
const PROBES = [
  'Big Ben is located in the city of',
  'Big Ben, which is in the city of',
  'The Brandenburg Gate is located in the city of',
  'The mother tongue of Danielle Darrieux is',
  'Michael Jordan professionally played the sport of',
];
const probeRows: Record<string, unknown>[] = [];
const unchanged = new Map<string, boolean>();
for (const m of models) {
  const before = await topTokens(m, PROBES, 5);
  const after = await topTokens(edits.get(m.name)!.model, PROBES, 5);
  const fmt = (ts: { token: string; p: number }[]) => ts.map((t) => `${t.token.trim()} ${t.p.toFixed(2)}`).join(', ');
  PROBES.forEach((p, i) => probeRows.push({ model: m.name, prompt: p, before: fmt(before[i]), after: fmt(after[i]) }));
  unchanged.set(m.name, PROBES.slice(3).every((_, i) => before[i + 3][0].id === after[i + 3][0].id));
}
showTable(probeRows, { title: 'Top-5 next tokens before and after the edit', limit: 20 });
const GEN = ['Big Ben is located in the city of', 'Big Ben is a famous clock tower in', 'Michael Jordan professionally played the sport of'];
const genRows: Record<string, unknown>[] = [];
for (const m of models) {
  const b = await greedyCompletions(m, GEN, 10);
  const a = await greedyCompletions(edits.get(m.name)!.model, GEN, 10);
  GEN.forEach((_, i) => genRows.push({ model: m.name, before: b[i], after: a[i] }));
}
showTable(genRows, { title: 'Greedy generations before and after' });

// %%
const restoredSame: boolean[] = [];
for (const m of models) {
  const x = (await m.logits(PROBES)).data;
  const y = (await m.logits(PROBES)).data;
  const fresh = await Model.load(`../data/models/${m.name}`);
  const z = (await fresh.logits(PROBES)).data;
  restoredSame.push(x.every((v, i) => v === y[i] && v === z[i]));
}
const topAfter = await Promise.all(models.map(async (m) => (await topTokens(edits.get(m.name)!.model, [PROBES[0]], 1))[0][0]));
markdown(models.map((m, i) => `**${m.name}**: after the edit "${PROBES[0]}" → "${topAfter[i].token.trim()}" (p = ${topAfter[i].p.toFixed(2)}); `
  + `the unrelated facts of other relations keep their top-1: ${unchanged.get(m.name) ? 'yes' : 'no'}; `
  + `the original model's logits equal a freshly loaded copy's bit for bit: ${restoredSame[i] ? 'yes' : 'no'}.`).join('\n\n'));

// %% [markdown]
// ## 4. CounterFact
//
// CounterFact records ask to rewrite a fact (*Angola is located in* Africa → Antarctica) and come with
// 2 paraphrases and 10 neighbourhood prompts (other subjects, same relation and true object). Scores,
// from the NLL of " " + object by teacher forcing (token-averaged):
// **ES** efficacy (new beats true on the rewrite prompt), **PS** paraphrase success, **NS**
// neighbourhood success (true still beats new), the magnitudes EM/PM/NM (probability differences) and
// **S**, the harmonic mean of ES, PS and NS. Only records the model knows are edited (its top-1
// token on the rewrite prompt starts the true object), as the paper does per model.

// %%
const records = loadCounterFact();
const known = new Map<string, CounterFactRecord[]>();
for (const m of models) known.set(m.name, await knownRecords(m, records));
const cf = new Map<string, Awaited<ReturnType<typeof evaluateEdits>>>();
const pre = new Map<string, ReturnType<typeof summarize>>();
for (const m of models) {
  const recs = known.get(m.name)!.slice(0, N_CF);
  pre.set(m.name, summarize(await Promise.all(recs.map((r) => scoreCase(m, r)))));
  cf.set(m.name, await evaluateEdits(m, recs, { ...EVAL, layer: LAYER.get(m.name), stats: STATS, generation: GENERATION }));
}
const metricCols = ['n', 'ES', 'PS', 'NS', 'S', 'EM', 'PM', 'NM'] as const;
showTable(models.flatMap((m) => {
  const s = cf.get(m.name)!.summary;
  const p = pre.get(m.name)!;
  const pick = (x: Record<string, unknown>) => Object.fromEntries(metricCols.map((k) => [k, x[k]]));
  return [{ model: m.name, edit: 'none (pre)', ...pick(p as unknown as Record<string, unknown>) }, { model: m.name, edit: `${s.matrix}@L${s.layer}`, ...pick(s as unknown as Record<string, unknown>), 's/edit': s.secondsPerEdit }];
}), { title: `CounterFact: first ${N_CF} known records per model` });
showTable(models.flatMap((m) => cf.get(m.name)!.cases.map((c) => ({
  model: m.name, subject: c.subject, 'true → new': `${c.targetTrue} → ${c.targetNew}`, ES: c.ES, PS: c.PS, NS: c.NS, 'p(new) rewrite': c.rewrite.pNew, 'p(true) rewrite': c.rewrite.pTrue,
}))), { title: 'Per case', limit: 20 });
markdown(`Known records: ${models.map((m) => `${m.name} knows ${known.get(m.name)!.length} of ${records.length}`).join(', ')}.`);

// %% [markdown]
// ### Generation checks
//
// ROME also generates from each record's generation prompts ("People around Angola speak the language
// of") after the edit: **fluency** is the weighted bi/tri-gram entropy of the texts (repetitive text
// scores low), and **consistency** here is the fraction of generations that mention the new object
// (ROME's TF-IDF reference score needs Wikipedia snippets that are not bundled).

// %%
const genCheckRows: Record<string, unknown>[] = [];
for (const m of models) {
  for (const c of cf.get(m.name)!.cases) {
    const r = known.get(m.name)!.find((k) => k.case_id === c.caseId)!;
    const before = await generationCheck(m, r, GENERATION);
    genCheckRows.push({
      model: m.name, edit: `${c.subject}: ${c.targetTrue} → ${c.targetNew}`, 'fluency before': before.fluency, 'fluency after': c.fluency,
      'mentions new before': before.mentionsNew, 'mentions new after': c.mentionsNew, 'example after': c.generations?.[0],
    });
  }
}
showTable(genCheckRows, { title: `Generations before and after editing (${GENERATION.prompts} prompts × ${GENERATION.maxNewTokens} tokens, top-5 sampling)` });
const meanOf = (xs: unknown[]) => (xs as number[]).reduce((a, b) => a + b, 0) / xs.length;
markdown(models.map((m) => {
  const rows = genCheckRows.filter((r) => r.model === m.name);
  return `**${m.name}**: fluency ${meanOf(rows.map((r) => r['fluency before'])).toFixed(2)} → ${meanOf(rows.map((r) => r['fluency after'])).toFixed(2)} bits; `
    + `generations mentioning the new object ${(100 * meanOf(rows.map((r) => r['mentions new before']))).toFixed(0)} % → ${(100 * meanOf(rows.map((r) => r['mentions new after']))).toFixed(0)} %.`;
}).join('\n\n'));

// %% [markdown]
// ## 5. Layer sweep
//
// Edit at each layer, for each matrix, and score. The paper's figure uses 2,000 known records per
// layer and all 64 / 32 layers; here the layers and records per point set at the top (in quick mode a
// few layers on 2 records, where a rate moves in steps of 50 %).

// %%
const sweepRows: SweepRow[] = [];
for (const m of models) {
  const res = await romeLayerSweep(m, known.get(m.name)!.slice(0, SWEEP_RECORDS), { ...EVAL, layers: sweepLayers(m), stats: STATS });
  sweepRows.push(...res.rows);
}
showFigure(sweepFigure(sweepRows, { title: `ROME performance by layer (${SWEEP_RECORDS} known records per point)` }));
showTable(sweepRows.map((r) => ({ model: r.model, matrix: r.matrix, layer: r.layer, n: r.n, ES: r.ES, PS: r.PS, NS: r.NS, S: r.S, EM: r.EM, PM: r.PM, NM: r.NM })), { title: 'Sweep', limit: 60 });

// %% [markdown]
// ## 6. Comparison with the paper
//
// The paper's numbers (paper-spec §3.6; 2,000 known records per point, Mamba-2.8b and Pythia-2.8b-deduped)
// are listed in the cell below as reference values; everything else is computed above.

// %%
/** Paper values at layer 15 (of 64 / 32), ES / PS / NS / S, from `rome_layer_sweep.ipynb` and the Pythia figure (paper-spec §3.6). */
const PAPER = {
  'mamba W_o': { ES: 100.0, PS: 94.52, NS: 87.73, S: 93.81 },
  'mamba W_g': { ES: 99.5, PS: 92.3, NS: 89.0, S: 93.39 },
  'mamba W_a': { ES: 100.0, PS: 82.1, NS: 88.8, S: 89.70 },
  'pythia W_down': { ES: 100.0, PS: 87.6, NS: 78.9, S: 88.0 },
};
/** Paper ES at the last layer (63 of 64, 31 of 32). */
const PAPER_LAST_ES = { W_a: 75.5, W_g: 1.8, W_o: 1.9, W_down: 2.6 };
const ours = (m: Model, matrix: string) => sweepRows.find((r) => r.model === m.name && r.matrix === matrix && r.layer === LAYER.get(m.name));
const cmp = [
  { paper: 'mamba W_o', ...PAPER['mamba W_o'], model: mamba, matrix: 'W_o' },
  { paper: 'mamba W_g', ...PAPER['mamba W_g'], model: mamba, matrix: 'W_g' },
  { paper: 'mamba W_a', ...PAPER['mamba W_a'], model: mamba, matrix: 'W_a' },
  { paper: 'pythia W_down', ...PAPER['pythia W_down'], model: neox, matrix: 'W_down' },
].map((c) => {
  const o = ours(c.model, c.matrix);
  return { site: c.paper, 'paper ES': c.ES, 'paper PS': c.PS, 'paper NS': c.NS, 'paper S': c.S, 'ours ES': o?.ES, 'ours PS': o?.PS, 'ours NS': o?.NS, 'ours S': o?.S, 'ours n': o?.n };
});
showTable(cmp, { title: `Paper (layer 15) vs demo models (layer ${LAYER.get(mamba.name)} of ${mamba.nLayers} / ${LAYER.get(neox.name)} of ${neox.nLayers})` });
const sM = cf.get(mamba.name)!.summary, sN = cf.get(neox.name)!.summary;
const lastLayer = (m: Model, matrix: string) => sweepRows.find((r) => r.model === m.name && r.matrix === matrix && r.layer === m.nLayers - 1);
const f1 = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(1));
const scores = (m: Model) => scoresText(cf.get(m.name)!.cases);
markdown([
  `On ${sM.n} known CounterFact records, ROME at mamba-facts' W_o (layer ${sM.layer}) reaches ${scores(mamba)} (S ${f1(sM.S)}; ± is the standard error over records); `
  + `the paper reports ES ${PAPER['mamba W_o'].ES}, PS ${PAPER['mamba W_o'].PS}, NS ${PAPER['mamba W_o'].NS} (S ${PAPER['mamba W_o'].S}) at Mamba-2.8b's layer 15. `
  + `At neox-facts' W_down (layer ${sN.layer}): ${scores(neox)} (S ${f1(sN.S)}), against Pythia-2.8b's ${PAPER['pythia W_down'].ES} / ${PAPER['pythia W_down'].PS} / ${PAPER['pythia W_down'].NS} (S ${PAPER['pythia W_down'].S}).`,
  `Before any edit the same records give ES ${f1(pre.get(mamba.name)!.ES)} (mamba-facts) and ${f1(pre.get(neox.name)!.ES)} (neox-facts): efficacy comes from the edit.`,
  `At the last layer the paper's ES is ${PAPER_LAST_ES.W_o} (W_o), ${PAPER_LAST_ES.W_g} (W_g), ${PAPER_LAST_ES.W_a} (W_a) and ${PAPER_LAST_ES.W_down} (Pythia W_down); here it is `
  + `${f1(lastLayer(mamba, 'W_o')?.ES)}, ${f1(lastLayer(mamba, 'W_g')?.ES)}, ${f1(lastLayer(mamba, 'W_a')?.ES)} and ${f1(lastLayer(neox, 'W_down')?.ES)} `
  + `(${SWEEP_RECORDS} records per point, so one record moves a rate by ${f1(100 / SWEEP_RECORDS)} points${QUICK ? '; quick mode: treat as a smoke test' : ''}). The reason is structural: v* changes the block output at the subject's last token, `
  + `and at the last layer nothing carries that token's W_o, W_g or W_down output to the prompt's last token; W_a's output also feeds the same layer's Conv+SSM, which does.`,
  `Caveats: 10M-parameter demo models, ${STATS.samples} WikiText-2 tokens for C instead of 100,000 Wikipedia articles, ${FULL ? 'the paper\'s v* settings' : '5 context templates and 8 steps for the CounterFact runs and the sweep instead of 21 and 20'}, and ${sM.n} / ${sN.n} records instead of 2,000. `
  + `The notebook ran in ${((Date.now() - t0) / 60000).toFixed(1)} minutes.`,
].join('\n\n'));
