// Source of notebooks/03-lre.ipynb: edit this file, then `npm run build-notebooks`.

// %% [markdown]
// # Linear relational embeddings: is relation decoding linear in Mamba as in transformers?
//
// The paper's third experiment (Sen Sharma, Atkinson & Bau 2024, §4 of `docs/paper-spec.md`) follows
// Hernandez et al. (2023): for a relation r (e.g. *country → capital*), take the hidden state **h** at the
// last token of the subject in layer ℓ and the hidden state **z** at the last token of the prompt in the
// last layer. Around one prompt the model is approximately linear, z ≈ J h + b with J = ∂z/∂h and
// b = z − J h. The **linear relational embedding** (LRE) averages J and b over n = 5 few-shot prompts and
// applies ẑ(h) = β·J h + b to new subjects; ẑ is decoded with the model's final norm and unembedding.
//
// - **Faithfulness**: does the decoded ẑ name the same object as the model itself (recall@1, best β)?
// - **Causality**: editing h by Δh = J_r⁺ (z_{s′} − z_s) (rank-r pseudo-inverse of J), does the model now
//   name the other subject's object (best rank)?
//
// Sites: for Mamba, h is the stream *entering* block ℓ and z the stream entering the last block (the
// paper notes this skips the last block); for GPT-NeoX/Pythia, h is the *output* of layer ℓ ("emb" = the
// embedding) and z the output of the last layer. For Mamba "emb" and layer 0 are the same state, so the
// Mamba x-axis starts at 0.
//
// Everything runs on the bundled demo models: **mamba-facts** (16 layers, d = 256) and **neox-facts**
// (8 layers, d = 256), tiny models that know ~75k real facts. J is a 256×256 Jacobian computed by reverse
// mode with the library's gradient tape (256 unit cotangents in one batched backward pass, all layers at
// once), never by finite differences.
//
// **Run size.** The cell below sets the size. The default run sweeps every (Mamba: every other) layer
// for two relations of the paper's sweep figure with 3 random train/test splits (std bands), n = 5, up to
// 50 test subjects and rank step 32, and draws the per-relation bars for all eight relations of the
// paper's sweep figure (outside the sweeps at each model's 3 best sweep layers, one split, faithfulness
// only). `FACTLENS_NB_QUICK=1` (the test suite's setting) runs 1 split, n = 3 and 12 test subjects, only
// to check that the cells run; `FACTLENS_NB_FULL=1` the paper's settings everywhere (the eight sweep
// relations, all 25 relations of the paper's bar chart swept at every layer with causality, 3 splits,
// rank step 8), which takes hours on two cores.

// %%
import * as aq from 'arquero';
import { Model } from '../src';
import { loadRelation } from '../src/data/relations';
import {
  betaGrid, layerCurves, LreLayer, lreLayers, makeIclPrompt, PAPER_GOOD_RANGE, PAPER_RELATION_BARS, PAPER_SWEEP_PEAKS, rankGrid, relationBars,
  relationSummary, relationTitle, sortedRelations, sweepFigure, sweepRelation, SweepRow, SweepSettings, TokenPrediction,
} from '../src/methods/lre';
import { markdown, progress, showFigure, showTable } from '../src/viz';
import { estimate, formatEstimate } from '../src/stats';
import { argmax } from '../src/runtime/logits';

const FULL = process.env.FACTLENS_NB_FULL === '1';
const QUICK = !FULL && process.env.FACTLENS_NB_QUICK === '1';
/** Relations of the layer sweeps (FULL: the eight of the paper's sweep figure). */
const SWEEP_RELATIONS = FULL ? Object.keys(PAPER_SWEEP_PEAKS) : ['country_capital_city', 'person_plays_instrument'];
/** Relations of the per-relation bars (FULL: all 25 of the paper's bar chart; default: the eight of its sweep figure). */
const BAR_RELATIONS = FULL ? Object.keys(PAPER_RELATION_BARS) : QUICK ? [...SWEEP_RELATIONS] : Object.keys(PAPER_SWEEP_PEAKS); // add ids here to see more bars
const TRIALS = QUICK ? 1 : 3; // random train/test splits of the sweeps (the paper: 3)
const BAR_TRIALS = FULL ? 3 : 1; // splits for the bars of relations outside the sweeps
const N_TRAIN = QUICK ? 3 : 5; // training samples per LRE (the paper: 5)
const MAX_TEST = FULL ? 100 : QUICK ? 12 : 50; // cap on the knowledge-filtered test set
const MAX_CANDIDATES = FULL ? null : QUICK ? 30 : 150; // cap on samples run through the knowledge filter
const BETA_STEPS = 25; // β ∈ linspace(0, βmax, 25); βmax = 12 (Mamba), 6 (Pythia)
const RANK_STEP = FULL ? 8 : 32; // ranks range(0, d, step) for the causality search
/** Bars for relations outside the sweeps use this many of the model's best sweep layers (FULL: every layer, with causality). */
const BAR_LAYERS = FULL ? null : 3;
const SEED = 0;

const models = [await Model.load('../data/models/mamba-facts'), await Model.load('../data/models/neox-facts')];
/** Layers: every layer in FULL; otherwise Mamba's even layers, as the paper plots Mamba ([emb ≡ 0], 0, 2, 4, …). */
const layersOf = (m: Model): LreLayer[] => lreLayers(m, m.arch === 'mamba' && !FULL ? 2 : 1);
const settings = (m: Model): SweepSettings => ({
  layers: layersOf(m), trials: TRIALS, nTrain: N_TRAIN, maxTest: MAX_TEST, maxCandidates: MAX_CANDIDATES, seed: SEED,
  betas: betaGrid(m, BETA_STEPS), ranks: rankGrid(m, RANK_STEP), k: 3,
});
markdown(`Run: **${FULL ? 'full (paper settings)' : QUICK ? 'quick (a smoke test: too small to read)' : 'default'}**: ${SWEEP_RELATIONS.length} relation(s) in the layer sweeps with ${TRIALS} trial(s), ${BAR_RELATIONS.length} in the bars (${BAR_TRIALS} trial(s) outside the sweeps), n = ${N_TRAIN}, ≤ ${MAX_TEST} test subjects, ${BETA_STEPS} β values, rank step ${RANK_STEP}, layers ${models.map((m) => `${m.name} [${layersOf(m).join(', ')}]`).join(' and ')}. Models: ${models.map((m) => `${m.name} (${m.nLayers} layers, d = ${m.config.dModel})`).join(', ')}.`);

// %% [markdown]
// ## The few-shot prompt
// The LRE code builds every prompt the same way: `"<|endoftext|> "`, then one line
// `template(s_k) + " " + o_k` per example, then the query `template(s)`. Each training prompt uses the
// *other* training samples as examples; test prompts use all n of them. The test set keeps only the subjects
// whose object the model itself names (top-1 token is a non-trivial prefix of the object) under that prompt.

// %%
{
  const rel = loadRelation(SWEEP_RELATIONS[0]);
  const ex = rel.samples.slice(0, 3);
  console.log(makeIclPrompt(rel.promptTemplates[0], rel.samples[3].subject, ex));
}

// %% [markdown]
// ## Layer sweeps
// For each model and relation: per trial, the LRE at every layer (one taped run and one batched backward
// pass per training prompt give the Jacobians of all layers), faithfulness at the best β and causality
// at the best rank. Curves are means over trials, bands ± one standard deviation.

// %%
const rows: SweepRow[] = [];
const examples = new Map<string, { layer: LreLayer; subjects: string[]; objects: string[]; model: string[]; lre: TokenPrediction[][]; beta: number; faith: number }>();
const seconds = new Map<string, number>();
for (const m of models) {
  const t0 = Date.now();
  const bar = progress(SWEEP_RELATIONS.length * TRIALS, `${m.name} sweeps`);
  for (const id of SWEEP_RELATIONS) {
    const got = await sweepRelation(m, loadRelation(id), {
      ...settings(m),
      onProgress: (msg) => (msg.endsWith('done') || msg.includes('skipped') ? bar.tick() : undefined),
      onLayer: ({ trial, layer, faithfulness, data }) => {
        // Keep the first trial's best layer of the first relation as a worked example.
        const key = `${m.name}|${id}`;
        const prev = examples.get(key);
        if (id !== SWEEP_RELATIONS[0] || trial !== 0 || (prev && prev.faith >= faithfulness.recall[0])) return;
        examples.set(key, {
          layer, subjects: data.tests.map((t) => t.subject), objects: data.tests.map((t) => t.object),
          model: data.tests.map((t) => m.decode([argmax(t.prompt.logits)])), lre: faithfulness.predictions,
          beta: faithfulness.beta, faith: faithfulness.recall[0],
        });
      },
    });
    rows.push(...got);
  }
  bar.done();
  seconds.set(m.name, (Date.now() - t0) / 1000);
}
markdown(models.map((m) => `${m.name}: ${rows.filter((r) => r.model === m.name).length} (trial, relation, layer) points in ${seconds.get(m.name)!.toFixed(0)} s.`).join(' '));

// %%
for (const m of models) {
  showFigure(sweepFigure(rows.filter((r) => r.model === m.name), { title: `LRE faithfulness (blue) and causality (orange) by layer: ${m.name}` }));
}

// %% [markdown]
// ### A worked example
// The first sweep relation at Mamba's most faithful layer (first trial): each test subject with its
// object, the model's own next token, and the top-3 tokens decoded from the LRE.

// %%
{
  const key = `${models[0].name}|${SWEEP_RELATIONS[0]}`;
  const ex = examples.get(key)!;
  showTable(aq.table({
    subject: ex.subjects, object: ex.objects, 'model says': ex.model,
    'LRE top-3': ex.lre.map((p) => p.map((x) => JSON.stringify(x.token)).join(' ')),
  }), { title: `${relationTitle(SWEEP_RELATIONS[0])}, ${models[0].name} layer ${ex.layer}, β = ${ex.beta.toFixed(2)}: faithfulness ${ex.faith.toFixed(2)}`, limit: 12 });
}

// %%
const curves = layerCurves(rows);
showTable(aq.from(curves.map((c) => ({
  model: c.model, relation: c.relation, layer: c.layer, faithfulness: +c.faithfulness.toFixed(3), 'faith. std': +c.faithfulnessStd.toFixed(3),
  causality: +c.causality.toFixed(3), 'caus. std': +c.causalityStd.toFixed(3), 'best β': +c.beta.toFixed(2), 'best rank': c.rank,
}))), { title: 'Layer sweeps: mean over trials', limit: 40 });

// %% [markdown]
// ## Per-relation faithfulness
// The paper's bar chart shows, per relation, the faithfulness at the best layer, with a red tick at a
// model-independent baseline (most likely the majority object; here: the share of the test set whose
// object is the most common one). Relations outside the layer sweeps (the default run has the eight of
// the paper's sweep figure, the full run all 25 of its bar chart; add ids to `BAR_RELATIONS` for more)
// are evaluated at the model's 3 best sweep layers with one split, faithfulness only, and in the full run
// at every layer with 3 splits. Each extra relation costs about 15 s here.

// %%
const barRows: SweepRow[] = [...rows];
{
  const bar = progress(models.length * BAR_RELATIONS.length, 'per-relation LREs');
  for (const m of models) {
    const mine = curves.filter((c) => c.model === m.name);
    const byLayer = new Map<string, number[]>();
    for (const c of mine) byLayer.set(c.layer, [...(byLayer.get(c.layer) ?? []), c.faithfulness]);
    const ranked = [...byLayer.entries()].sort((a, b) => mean(b[1]) - mean(a[1])).map(([l]) => (l === 'emb' ? 'emb' : Number(l)) as LreLayer);
    for (const id of BAR_RELATIONS) {
      if (!SWEEP_RELATIONS.includes(id)) {
        const layers = BAR_LAYERS === null ? undefined : ranked.slice(0, BAR_LAYERS);
        barRows.push(...(await sweepRelation(m, loadRelation(id), { ...settings(m), trials: BAR_TRIALS, layers, causality: BAR_LAYERS === null })));
      }
      bar.tick();
    }
  }
  bar.done();
}
function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
const summary = relationSummary(barRows).filter((s) => BAR_RELATIONS.includes(s.relation));
const names = models.map((m) => m.name);
showFigure(relationBars(summary, names, { title: 'LRE faithfulness per relation (best layer; red: majority-object baseline)' }));
showTable(aq.from(sortedRelations(summary, names[0]).map((rel) => {
  const get = (m: string) => summary.find((s) => s.model === m && s.relation === rel);
  const [a, b] = names.map(get);
  const paper = PAPER_RELATION_BARS[rel];
  return {
    relation: relationTitle(rel),
    [`${names[0]}`]: a ? +a.faithfulness.toFixed(3) : null, [`${names[0]} layer`]: a?.layer ?? '',
    [`${names[1]}`]: b ? +b.faithfulness.toFixed(3) : null, [`${names[1]} layer`]: b?.layer ?? '',
    baseline: a ? +a.baseline.toFixed(3) : null, [`${names[0]} z ceiling`]: a ? +a.zDecode.toFixed(3) : null, 'paper Mamba': paper?.mamba ?? null, 'paper Pythia': paper?.pythia ?? null,
  };
})), { title: 'Best-layer faithfulness per relation, with the paper\'s values', limit: 30 });

// %% [markdown]
// ## Comparison with the paper
// The paper's numbers (§4.3) come from Mamba-2.8b and Pythia-2.8b on the same relation files; ours from
// two 10M-parameter demo models, so the comparison is about the *shape* of the results: does an LRE
// exist at all, where in depth it works, and does Mamba match the transformer?

// %%
{
  const [mName, nName] = names;
  const text: string[] = [];
  // Layer sweeps: peaks and where the good range ends.
  for (const rel of SWEEP_RELATIONS) {
    const paper = PAPER_SWEEP_PEAKS[rel];
    const parts = models.map((m, i) => {
      const cs = curves.filter((c) => c.model === m.name && c.relation === rel);
      if (!cs.length) return `${m.name}: no trial had enough known test subjects`;
      const fPeak = cs.reduce((a, b) => (b.faithfulness > a.faithfulness ? b : a));
      const cPeak = cs.reduce((a, b) => (b.causality > a.causality ? b : a));
      const good = cs.filter((c) => c.faithfulness >= fPeak.faithfulness / 2);
      const lastGood = good[good.length - 1];
      const depth = (lastGood.layerIndex + 1) / m.nLayers;
      const ref = paper ? (i === 0 ? paper.mamba : paper.pythia) : null;
      return `${m.name}: faithfulness peaks at ${fPeak.faithfulness.toFixed(2)} (layer ${fPeak.layer}), causality at ${cPeak.causality.toFixed(2)} (layer ${cPeak.layer}); faithfulness stays above half its peak up to layer ${lastGood.layer} (${Math.round(100 * depth)} % of depth)` +
        (ref ? ` — paper ${i === 0 ? 'Mamba' : 'Pythia'}: ${ref.faithfulness.toFixed(2)} / ${ref.causality.toFixed(2)}` : '');
    });
    text.push(`- **${relationTitle(rel)}**: ${parts.join('; ')}.`);
  }
  const g = PAPER_GOOD_RANGE;
  text.push(`- **Depth**: in the paper, Mamba's curves hold up to about layer ${g.mamba.layer} of ${g.mamba.of} (${Math.round((100 * (g.mamba.layer + 1)) / g.mamba.of)} % of depth) and Pythia's collapse after layers ${g.pythia.from}–${g.pythia.to} of ${g.pythia.of} (${Math.round((100 * g.pythia.from) / g.pythia.of)}–${Math.round((100 * g.pythia.to) / g.pythia.of)} %): the LRE works as long as the subject's last token still carries the attribute.`);
  text.push(`- **Layer numbers**: the paper's LRE code (evandez/relations, branch \`mamba\`, commit b03b460, \`src/functional.py\`) reads \`backbone.layers[ℓ]\`'s output *residual* of mamba_ssm's block, `
    + `which is the stream *entering* block ℓ (embeddings plus the mixer outputs of blocks 0…ℓ−1), and z the stream entering the last block: the same streams as our layer ℓ and our z, so the layer numbers compare without an offset. `
    + `For Mamba, layer 0 and "emb" are then one state in both (so our Mamba x-axis starts at 0). ROME's "layer ℓ" is \`layers[ℓ].mixer.out_proj\` in both.`);
  // Per-relation bars.
  const both = BAR_RELATIONS.filter((r) => summary.some((s) => s.model === mName && s.relation === r) && summary.some((s) => s.model === nName && s.relation === r));
  const f = (m: string, r: string) => summary.find((s) => s.model === m && s.relation === r)!.faithfulness;
  const ours = [mean(both.map((r) => f(mName, r))), mean(both.map((r) => f(nName, r)))];
  const withPaper = both.filter((r) => PAPER_RELATION_BARS[r]);
  const paperMeans = [mean(withPaper.map((r) => PAPER_RELATION_BARS[r].mamba)), mean(withPaper.map((r) => PAPER_RELATION_BARS[r].pythia))];
  const allPaper = Object.values(PAPER_RELATION_BARS);
  const higher = both.filter((r) => f(mName, r) > f(nName, r)).length;
  const paperHigher = withPaper.filter((r) => PAPER_RELATION_BARS[r].mamba > PAPER_RELATION_BARS[r].pythia).length;
  const above = (m: string) => both.filter((r) => f(m, r) > summary.find((s) => s.model === m && s.relation === r)!.baseline).length;
  text.push(`- **Per relation** (${both.length} relations): mean best-layer faithfulness ${mName} ${ours[0].toFixed(2)}, ${nName} ${ours[1].toFixed(2)}; ${mName} is higher on ${higher} of ${both.length}. ` +
    `The paper on the same relations: Mamba ${paperMeans[0].toFixed(2)}, Pythia ${paperMeans[1].toFixed(2)}, Mamba higher on ${paperHigher} of ${withPaper.length} ` +
    `(over all ${allPaper.length}: ${mean(allPaper.map((p) => p.mamba)).toFixed(2)} vs ${mean(allPaper.map((p) => p.pythia)).toFixed(2)}, Mamba higher on ${allPaper.filter((p) => p.mamba > p.pythia).length}). ` +
    `Above the majority baseline: ${mName} on ${above(mName)} of ${both.length}, ${nName} on ${above(nName)} of ${both.length}.`);
  const ceil = models.map((m) => mean(summary.filter((x) => x.model === m.name).map((x) => x.zDecode)));
  text.push(`- **Ceiling**: decoding z itself names the object for ${(100 * ceil[0]).toFixed(0)} % of ${mName}'s test subjects (z skips the last block, as in the paper) and ${(100 * ceil[1]).toFixed(0)} % of ${nName}'s (z is the last layer's output, so 100 % by construction of the test set).`);
  // The verdict rests on the per-relation differences (paired), with a bootstrap interval over relations.
  const diff = estimate(both.map((r) => f(mName, r) - f(nName, r)));
  const diffText = `${mName} − ${nName} per relation ${formatEstimate(diff, { digits: 2 })}, n counting relations; 95 % bootstrap interval [${diff.lo.toFixed(2)}, ${diff.hi.toFixed(2)}]`;
  // Compared with the paper's own difference on the same relations, not with its headline.
  const paperGap = withPaper.length ? paperMeans[0] - paperMeans[1] : NaN;
  const paperSide = Number.isNaN(paperGap) ? 'the paper has no values for these relations' : `the paper's Mamba − Pythia on the same ${withPaper.length} relations: ${paperGap.toFixed(2)}`;
  const side = diff.lo > 0 ? 'more' : diff.hi < 0 ? 'less' : null;
  const verdict = side === null
    ? `Relation decoding in the Mamba model is about as linear as in the transformer here: mean best-layer faithfulness ${ours[0].toFixed(2)} vs ${ours[1].toFixed(2)} (${diffText}, which includes 0; ${paperSide}).`
    : `The Mamba demo model's LREs are ${side} faithful than the transformer's: ${ours[0].toFixed(2)} vs ${ours[1].toFixed(2)} (${diffText}); `
      + `${Number.isNaN(paperGap) ? '' : (side === 'more') === (paperGap > 0) ? 'as in the paper on the same relations, ' : 'unlike the paper on the same relations, '}${paperSide}`
      + `${side === 'less' ? '; part of the gap is the z ceiling above' : ''}.`;
  markdown([...text, '', verdict, QUICK ? `*(Quick run: ${TRIALS} trial, ≤ ${MAX_TEST} test subjects per relation: a smoke test, not a result.)*` : ''].join('\n'));
}
