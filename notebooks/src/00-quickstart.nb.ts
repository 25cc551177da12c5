// Source of notebooks/00-quickstart.ipynb: edit this file, then `npm run build-notebooks`.

// %% [markdown]
// # factlens quickstart
//
// Load a Mamba model, predict the next token, cache and inspect its activations, patch one from another
// prompt, map where patching restores the fact, read the residual stream with a logit lens and generate
// text; then the same on a GPT-NeoX (Pythia-style) model. Coming from TransformerLens or nnsight?
// `docs/coming-from-transformerlens.md` lists their calls next to ours.
//
// The models are the two tiny demo models shipped in `data/models/` (16-layer Mamba and 8-layer
// GPT-NeoX, about 10M parameters each, trained on ~75k real-world facts). To use a real checkpoint,
// download a Hugging Face directory (e.g. `state-spaces/mamba-2.8b-hf` or `EleutherAI/pythia-2.8b-deduped`,
// with safetensors weights) and change `MAMBA_DIR` / `NEOX_DIR` below.
//
// Change `FACT` and `OTHER` to any prompts that contain their subjects: every position below is found
// from the subject's string, never counted by hand.

// %%
import * as aq from 'arquero';
import { findSubject, getActName, interventionHooks, logitLens, Model, probOf, sweep, topK } from '../src';
import { heatmap, lineChart, markdown, showFigure, showTable } from '../src/viz';

const MAMBA_DIR = '../data/models/mamba-facts'; // or e.g. '/models/mamba-2.8b-hf'
const NEOX_DIR = '../data/models/neox-facts'; // or e.g. '/models/pythia-2.8b-deduped'
// test/notebooks/quickstart.test.ts reruns this notebook with other prompts through FACTLENS_QUICKSTART ({"fact": ..., "other": ...}).
const custom = process.env.FACTLENS_QUICKSTART ? JSON.parse(process.env.FACTLENS_QUICKSTART) : null;
const FACT: { prompt: string; subject: string } = custom?.fact ?? { prompt: 'The capital city of France is', subject: 'France' };
const OTHER: { prompt: string; subject: string } = custom?.other ?? { prompt: 'The capital city of Italy is', subject: 'Italy' };
const mamba = await Model.load(MAMBA_DIR);
mamba

// %% [markdown]
// ## Tokenize and predict the next token
// `model.toStrTokens` shows how the prompt is split; `findSubject` finds the subject's tokens by string
// (and says so if the prompt does not contain it); `topK` turns a row of next-token logits into a table.

// %%
const tokens = mamba.toStrTokens(FACT.prompt);
const subject = findSubject(mamba, FACT.prompt, FACT.subject);
const next = topK(await mamba.logits(FACT.prompt, { last: true }), 5, mamba);
showTable(next, { title: `Mamba: next token after "${FACT.prompt}"`, digits: 4 });
const quote = (t: string) => '`' + JSON.stringify(t) + '`';
markdown(`The prompt is ${tokens.length} tokens: ${tokens.map(quote).join(' ')}; the subject "${FACT.subject}" is token${subject.positions.length > 1 ? 's' : ''} ${subject.positions.join(', ')}. ` +
  `The top prediction is ${quote(next.get('token', 0) as string)} with p = ${(next.get('p', 0) as number).toFixed(3)}.`);

// %% [markdown]
// ## Cache activations
// `runWithCache` with no names keeps every hook point (it refuses, with an estimate, when that would not fit in
// memory; pass names to keep fewer). The cache indexes like a record under any spelling: canonical names
// (`layers.8.mixer.ssm_out` is the Conv+SSM output s, `mixer.gate` the gate g, `mixer.out` the block output o),
// TransformerLens / romba aliases, or `getActName`. A cell whose last expression is a cache or a tensor shows a
// one-line summary.

// %%
const { cache } = await mamba.runWithCache(FACT.prompt);
const names = [getActName('in_proj', 8), 'blocks.8.hook_ssm_output', getActName('gate', 8), 'layers.8.mixer.state', 'layers.8.mixer.out'];
showTable(aq.from(names.map((n) => {
  const t = cache[n as `${string}.${string}`];
  const rms = Math.sqrt(t.data.reduce((s, x) => s + x * x, 0) / t.size);
  return { hook: n, shape: `[${t.shape.join(', ')}]`, rms };
})), { title: 'Cached activations (batch of one)', digits: 4 });
cache

// %% [markdown]
// ## Patch an activation from another prompt
// A declarative intervention replaces the block output o at the subject's last token in layers 0–7 with its
// value at the other subject's last token in a run on `OTHER`: the positions are named by subject, so they
// stay right whatever the prompts are.

// %%
const L = mamba.nLayers;
const early = Array.from({ length: Math.ceil(L / 2) }, (_, l) => l);
const donor = await mamba.runWithCache(OTHER.prompt, early.map((l) => `layers.${l}.mixer.out`));
const patchHooks = interventionHooks(mamba, [{
  hook: 'layers.{layer}.mixer.out', layers: early, positions: { subjectLast: FACT.subject }, op: 'replace',
  source: { cache: 'other', position: { subjectLast: OTHER.subject } },
}], { caches: { other: donor.cache } });
const patched = await mamba.runWithHooks(FACT.prompt, patchHooks, { logits: 'last' });
const after = topK(patched.logits!, 5, mamba);
showTable(after, { title: `After patching o at "${FACT.subject}" from "${OTHER.subject}", layers 0–${early.length - 1}`, digits: 4 });
markdown(`Patching o at the last token of "${FACT.subject}" (token ${subject.last}) with its value at "${OTHER.subject}" moved the top prediction ` +
  `from ${quote(next.get('token', 0) as string)} (p = ${(next.get('p', 0) as number).toFixed(3)}) to ${quote(after.get('token', 0) as string)} (p = ${(after.get('p', 0) as number).toFixed(3)}).`);

// %% [markdown]
// ## Where does patching restore the fact?
// Run `OTHER` and put back `FACT`'s residual stream entering one layer at one token; the heat map shows the
// probability of `FACT`'s answer for every (layer, token) cell: one batched `sweep` over the grid. Cells are
// compared token by token, so the two prompts must have the same number of tokens.

// %%
const factIds = mamba.encode(FACT.prompt);
const otherIds = mamba.encode(OTHER.prompt);
const answer = next.get('id', 0) as number;
// (`tokens: tokens`, not `{ tokens }`: tslab 1.0.22 loses a variable of an earlier cell in a shorthand property.)
if (factIds.length === otherIds.length) {
  const clean = await mamba.runWithCache(FACT.prompt, Array.from({ length: L }, (_, l) => getActName('resid_pre', l)));
  const grid = Array.from({ length: L }, (_, layer) => factIds.map((_, pos) => ({ layer, pos, token: tokens[pos] }))).flat();
  const restored = await sweep(mamba, grid, {
    input: otherIds,
    interventions: (r) => [{ hook: getActName('resid_pre', r.layer as number), positions: [r.pos as number], op: 'replace', source: { cache: 'clean' } }],
    caches: { clean: clean.cache },
    metric: (logits) => ({ p: probOf(logits, answer) }),
  });
  showFigure(heatmap({ table: restored, valueColumn: 'p', tokens: tokens, subject: subject.positions, metric: `p(${JSON.stringify(mamba.decode([answer]))})`, title: `Restoring "${FACT.prompt}" into "${OTHER.prompt}", Mamba` }));
} else {
  markdown(`"${FACT.prompt}" has ${factIds.length} tokens and "${OTHER.prompt}" has ${otherIds.length}: pick an OTHER prompt of the same length for the token-by-token map.`);
}

// %% [markdown]
// ## Logit lens
// `logitLens` decodes the residual stream after every layer with the final norm and the unembedding; by default
// it tracks the model's final answer at each position (a table: layer × position → top token, p(answer)).

// %%
const lensMamba = await logitLens(mamba, FACT.prompt, { at: 'last' });
showFigure(lineChart(lensMamba, { x: 'layer', y: ['p_answer'], xTitle: 'layer (-1 = embeddings)', yTitle: 'p(answer)', title: 'Logit lens, Mamba' }));
const firstConfident = (lensMamba.objects() as { layer: number; p_answer: number }[]).find((r) => r.p_answer > 0.5);
markdown(firstConfident
  ? `In Mamba the answer ${quote(lensMamba.get('answer', 0) as string)} first passes p = 0.5 in the logit lens after layer ${firstConfident.layer} of ${L}.`
  : `In Mamba the answer ${quote(lensMamba.get('answer', 0) as string)} never passes p = 0.5 in the logit lens.`);

// %% [markdown]
// ## Generate
// `model.generate` continues the prompt (greedy here; `topK` and `seed` sample).

// %%
const generation = await mamba.generate(FACT.prompt, { maxNewTokens: 8 });
markdown(`**${FACT.prompt}**${generation.texts[0]}`);

// %% [markdown]
// ## The same on GPT-NeoX (Pythia architecture)
// The API is the same; the hook names differ (`attn.out`, `mlp.out`, `mlp.key`, ...).

// %%
const neox = await Model.load(NEOX_DIR);
const neoxNext = topK(await neox.logits(FACT.prompt, { last: true }), 5, neox);
showTable(neoxNext, { title: `GPT-NeoX: next token after "${FACT.prompt}"`, digits: 4 });
const neoxNames = [getActName('pattern', 3), getActName('post', 3, 'mlp'), getActName('mlp_out', 3)];
const neoxRun = await neox.runWithCache(FACT.prompt, neoxNames);
showTable(aq.from(neoxNames.map((n) => ({ hook: n, shape: `[${neoxRun.cache.get(n).shape.join(', ')}]` }))), { title: 'GPT-NeoX activations' });
const lensNeox = await logitLens(neox, FACT.prompt);
showFigure(lineChart(lensNeox, { x: 'layer', y: ['p_answer'], xTitle: 'layer (-1 = embeddings)', yTitle: 'p(answer)', title: 'Logit lens, GPT-NeoX' }));
markdown(`GPT-NeoX predicts ${quote(neoxNext.get('token', 0) as string)} (p = ${(neoxNext.get('p', 0) as number).toFixed(3)}); its logit lens reaches p = ${(lensNeox.get('p_answer', neox.nLayers) as number).toFixed(3)} after the last of its ${neox.nLayers} layers.`);

// %% [markdown]
// ## Where next
// - `01-causal-tracing`: which states carry the fact, by activation patching over every layer and token.
// - `02-rome`: editing the fact with a rank-one update of W_a, W_g, W_o (Mamba) or W_down (Pythia).
// - `03-lre`: is the relation decoded linearly from the subject's representation?
// - `04-information-flow`: which paths carry the subject to the last token.
