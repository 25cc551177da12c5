// Source of notebooks/00-quickstart.ipynb: edit this file, then `npm run build-notebooks`.

// %% [markdown]
// # factlens quickstart
//
// Load a Mamba model, predict the next token, cache and inspect its activations, patch one, and read
// the residual stream with a logit lens; then the same on a GPT-NeoX (Pythia-style) model.
//
// The models are the two tiny demo models shipped in `data/models/` (16-layer Mamba and 8-layer
// GPT-NeoX, about 10M parameters each, trained on ~75k real-world facts). To use a real checkpoint,
// download a Hugging Face directory (e.g. `state-spaces/mamba-2.8b-hf` or `EleutherAI/pythia-2.8b-deduped`,
// with safetensors weights) and change `MAMBA_DIR` / `NEOX_DIR` below.

// %%
import * as aq from 'arquero';
import { Model, softmaxRow, Tensor } from '../src';
import { lineChart, markdown, showFigure, showTable } from '../src/viz';

const MAMBA_DIR = '../data/models/mamba-facts'; // or e.g. '/models/mamba-2.8b-hf'
const NEOX_DIR = '../data/models/neox-facts'; // or e.g. '/models/pythia-2.8b-deduped'
const mamba = await Model.load(MAMBA_DIR);
markdown(`Loaded **${mamba.name}**: ${mamba.arch}, ${mamba.nLayers} layers, d_model ${mamba.config.dModel}, vocabulary ${mamba.config.vocabSize}, ${(mamba.weightBytes / 2 ** 20).toFixed(1)} MiB of float32 weights.`);

// %% [markdown]
// ## Tokenize and predict the next token
// `model.encode` gives token ids; `model.logits(input, { last: true })` the next-token logits at each
// row's last token.

// %%
const prompt = 'The capital city of France is';
const ids = mamba.encode(prompt);
const tokens = mamba.tokenStrings(ids);

/** The k most likely next tokens of a logits row [V], as an arquero table. */
function topK(model: Model, row: Float32Array, k = 5) {
  const { probs } = softmaxRow(row, 0, row.length);
  const top = [...probs.keys()].sort((a, b) => probs[b] - probs[a]).slice(0, k);
  return aq.table({ token: top.map((id) => JSON.stringify(model.decode([id]))), id: top, p: top.map((id) => probs[id]) });
}

const next = topK(mamba, (await mamba.logits([ids], { last: true })).data);
showTable(next, { title: `Mamba: next token after "${prompt}"`, digits: 4 });
markdown(`The prompt is ${ids.length} tokens: ${tokens.map((t) => '`' + t + '`').join(' ')}. The top prediction is ${next.get('token', 0)} with p = ${(next.get('p', 0) as number).toFixed(3)}.`);

// %% [markdown]
// ## Cache activations
// Hook points have canonical names (`layers.{i}.mixer.ssm_out` is the Conv+SSM output s, `mixer.gate`
// the gate g, `mixer.out` the block output o, `resid_post` the residual stream after the block; see
// `docs/hooks.md`). romba's and TransformerLens's names work too. Only the names asked for are kept.

// %%
const L = mamba.nLayers;
const names = ['layers.8.mixer.x', 'layers.8.ssm_after_ssm', 'layers.8.mixer.gate', 'layers.8.mixer.state', 'layers.8.mixer.out'];
const run = await mamba.runWithCache([ids], names);
showTable(aq.from(names.map((n) => {
  const t = run.cache.get(n);
  const norm = Math.sqrt(t.data.reduce((s, x) => s + x * x, 0) / t.size);
  return { hook: n, shape: `[${t.shape.join(', ')}]`, rms: norm };
})), { title: 'Cached activations (batch of one)', digits: 4 });

// %% [markdown]
// ## Patch an activation
// A hook may replace the tensor it sees. Here the block output o at the subject's last token
// (" France") in layers 0–7 is replaced by its value from a run on a different subject (" Italy"),
// and we watch the prediction move.

// %%
/** Index of the last token of `subject` in `text` (the prefix up to it, tokenized on its own). */
const lastTokenOf = (model: Model, text: string, subject: string) => model.encode(text.slice(0, text.indexOf(subject) + subject.length)).length - 1;
const otherPrompt = 'The capital city of Italy is';
const other = mamba.encode(otherPrompt);
const subjectLast = lastTokenOf(mamba, prompt, 'France');
const otherLast = lastTokenOf(mamba, otherPrompt, 'Italy');
const donor = await mamba.runWithCache([other], [...Array(L).keys()].map((l) => `layers.${l}.mixer.out`));
const hooks: Array<[string, (t: Tensor) => Tensor]> = [0, 1, 2, 3, 4, 5, 6, 7].map((l) => [`layers.${l}.mixer.out`, (act: Tensor) => {
  const out = act.clone();
  const D = act.shape[2];
  const src = donor.cache.get(`layers.${l}.mixer.out`).data.subarray(otherLast * D, (otherLast + 1) * D);
  out.data.set(src, subjectLast * D);
  return out;
}]);
const patched = await mamba.runWithHooks([ids], hooks, { logits: 'last' });
const after = topK(mamba, patched.logits!.data);
showTable(after, { title: 'After patching o at the subject\'s last token, layers 0–7', digits: 4 });
markdown(`Patching moved the top prediction from ${next.get('token', 0)} (p = ${(next.get('p', 0) as number).toFixed(3)}) to ${after.get('token', 0)} (p = ${(after.get('p', 0) as number).toFixed(3)}).`);

// %% [markdown]
// ## Logit lens
// Decode the residual stream after every layer at the last token with the final norm and the
// unembedding (`model.unembed`), and follow the probability of the model's final answer.

// %%
async function logitLens(model: Model, input: number[]) {
  const n = model.nLayers;
  const res = await model.runWithCache([input], [...Array(n).keys()].map((l) => `layers.${l}.resid_post`), { logits: 'last' });
  const answer = (next: Float32Array) => next.indexOf(Math.max(...next));
  const final = res.logits!.data;
  const target = answer(final);
  const D = model.config.dModel;
  const T = input.length;
  const rows = new Float32Array(n * D); // [L,D]: each layer's residual at the last token
  for (let l = 0; l < n; l++) rows.set(res.cache.get(`layers.${l}.resid_post`).data.subarray((T - 1) * D, T * D), l * D);
  const lens = await model.unembed(new Tensor(rows, [n, D])); // [L,V]
  const V = model.config.vocabSize;
  return aq.table({
    layer: [...Array(n).keys()],
    p_answer: [...Array(n).keys()].map((l) => softmaxRow(lens.data, l * V, V).probs[target]),
    top_token: [...Array(n).keys()].map((l) => model.decode([answer(lens.data.subarray(l * V, (l + 1) * V))])),
  });
}
const lensMamba = await logitLens(mamba, ids);
showFigure(lineChart(lensMamba, { x: 'layer', y: ['p_answer'], xTitle: 'layer', yTitle: 'p(answer)', title: 'Logit lens, Mamba' }));
const firstConfident = (lensMamba.objects() as { layer: number; p_answer: number }[]).find((r) => r.p_answer > 0.5);
markdown(firstConfident
  ? `In Mamba the answer first passes p = 0.5 in the logit lens after layer ${firstConfident.layer} of ${L}.`
  : `In Mamba the answer never passes p = 0.5 in the logit lens before the last layer.`);

// %% [markdown]
// ## The same on GPT-NeoX (Pythia architecture)
// The API is the same; the hook names differ (`attn.out`, `mlp.out`, `mlp.key`, ...).

// %%
const neox = await Model.load(NEOX_DIR);
const neoxIds = neox.encode(prompt);
const neoxNext = topK(neox, (await neox.logits([neoxIds], { last: true })).data);
showTable(neoxNext, { title: `GPT-NeoX: next token after "${prompt}"`, digits: 4 });
const neoxRun = await neox.runWithCache([neoxIds], ['layers.3.attn.pattern', 'layers.3.mlp.key', 'layers.3.mlp.out']);
showTable(aq.from(['layers.3.attn.pattern', 'layers.3.mlp.key', 'layers.3.mlp.out'].map((n) => ({ hook: n, shape: `[${neoxRun.cache.get(n).shape.join(', ')}]` }))), { title: 'GPT-NeoX activations' });
const lensNeox = await logitLens(neox, neoxIds);
showFigure(lineChart(lensNeox, { x: 'layer', y: ['p_answer'], xTitle: 'layer', yTitle: 'p(answer)', title: 'Logit lens, GPT-NeoX' }));
markdown(`GPT-NeoX predicts ${neoxNext.get('token', 0)} (p = ${(neoxNext.get('p', 0) as number).toFixed(3)}); its logit lens reaches p = ${(lensNeox.get('p_answer', neox.nLayers - 1) as number).toFixed(3)} at the last of its ${neox.nLayers} layers.`);

// %% [markdown]
// ## Where next
// - `01-causal-tracing`: which states carry the fact, by activation patching over every layer and token.
// - `02-rome`: editing the fact with a rank-one update of W_a, W_g, W_o (Mamba) or W_down (Pythia).
// - `03-lre`: is the relation decoded linearly from the subject's representation?
// - `04-information-flow`: which paths carry the subject to the last token.
