/**
 * npx tsx bench/methods.ts [--models mamba-facts,neox-facts,mamba-130m,pythia-160m] [--methods causal-trace,lre-jacobian,knockout,rome-edit] [--json]
 *
 * Method-level bench (issue #20): the experiment a researcher waits for, ours against the same work in
 * PyTorch + transformers (bench/torch_methods.py, hooks batched over cells) in one run on this machine.
 * Methods: the single-prompt causal-tracing map (every kind of the architecture, one 11-token prompt
 * pair, "The Space Needle is located in the city of" vs "The Eiffel Tower ...", random ids on the
 * random-weight shapes), one prompt's LRE Jacobian set (∂z/∂h at every layer), and one prompt's knockout
 * sweep (every source set × window centre: attention knockout on GPT-NeoX, the paper's mean ablation of a
 * on Mamba). Each side runs once to warm up and once timed; the results must agree (max |Δ|). The
 * causal-trace row also times ours with every cell over the whole prompt (suffix: false), so the
 * speed-up of resuming mid-prompt (Mamba's state, a transformer's keys/values) is measured in the
 * same run. rome-edit: one ROME edit at the paper's settings (21 context templates, ≤ 20 Adam steps) at
 * the default site, with the key statistics C and the context templates computed beforehand and given
 * to both sides (a researcher has them cached); the agreement is max |Δ| of w (ΔW = w uᵀ) and of u.
 * Appends `{ kind: 'method', method, model, ms, torchMs, maxAbsDiff }` rows to .cache/bench-last.json.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { arg } from './clock';
import { checkpointDir } from './checkpoints';
import { CACHE, MODELS, ROOT, benchIds } from './configs';
import { lastJson, run } from './proc';
import { torchEnv } from './torch';
import { argmax, probOf } from '../src/runtime/logits';

const args = process.argv.slice(2);
const NAMES = arg('--models', 'mamba-facts,neox-facts,mamba-130m,pythia-160m').split(',');
const JSON_OUT = args.includes('--json');
const METHODS = ['causal-trace', 'lre-jacobian', 'knockout', 'rome-edit'] as const;
const CHOSEN = arg('--methods', METHODS.join(',')).split(',').map((m) => {
  if (!(METHODS as readonly string[]).includes(m)) throw new Error(`--methods: unknown method ${JSON.stringify(m)} (known: ${METHODS.join(', ')})`);
  return m as (typeof METHODS)[number];
});
/** #20's targets for the single-prompt map, ms: the demo models, the 130m/160m shapes. */
const MAP_TARGET_MS: Record<string, number> = { 'mamba-facts': 1000, 'neox-facts': 1000, 'mamba-130m': 10_000, 'pythia-160m': 10_000 };

export interface MethodRow {
  kind: 'method';
  method: (typeof METHODS)[number];
  model: string;
  ms: number;
  torchMs: number | null;
  maxAbsDiff: number | null;
  /** What was computed, in words. */
  work: string;
  targetMs?: number;
  /** causal-trace: ours with every cell run over the whole prompt (no state / keys-values resume), same run. */
  noResumeMs?: number;
  note?: string;
}

type Log = (s: string) => void;
type Torch = Awaited<ReturnType<typeof torchEnv>>;

async function main(): Promise<void> {
  const log: Log = (s: string) => (JSON_OUT ? undefined : console.error(s));
  const { Model } = await import('../src/runtime/model');
  const torch = await torchEnv(log);
  log(`method bench: ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${torch.note}`);
  const rows: MethodRow[] = [];
  for (const name of NAMES) {
    const spec = MODELS.find((m) => m.name === name);
    if (!spec) throw new Error(`--models: unknown bench model ${JSON.stringify(name)} (known: ${MODELS.map((m) => m.name).join(', ')})`);
    const dir = checkpointDir(spec, log);
    const model = await Model.load(dir);
    for (const method of CHOSEN) {
      const row = await ({ 'causal-trace': causalTraceRow, 'lre-jacobian': lreJacobianRow, knockout: knockoutRow, 'rome-edit': romeEditRow })[method](model, name, dir, torch);
      rows.push(row);
      log(`${name}: ${method} (${row.work}): ours ${row.ms.toFixed(0)} ms` +
        (row.torchMs !== null ? `, torch ${row.torchMs.toFixed(0)} ms, ratio ${(row.torchMs / row.ms).toFixed(2)}×, max |Δ| ${row.maxAbsDiff!.toExponential(1)}` : `, no torch (${row.note ?? torch.note})`) +
        (row.targetMs ? `; target ≤ ${row.targetMs} ms: ${row.ms <= row.targetMs ? 'met' : 'missed'}` : '') +
        (row.noResumeMs ? `; without resuming mid-prompt ${row.noResumeMs.toFixed(0)} ms (resume ${(row.noResumeMs / row.ms).toFixed(2)}× faster)` : ''));
    }
  }
  saveRows(rows);
  if (JSON_OUT) console.log(JSON.stringify(rows));
}

/** Warm-up once (session compile), then one timed run. */
async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  await f();
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

/** The PyTorch side of one method, or the reason it did not run. */
async function torchSide<T>(torch: Torch, method: string, dir: string, job: unknown): Promise<{ ms: number; out: T } | { note: string }> {
  if (!torch.python) return { note: torch.note };
  const res = await run(torch.python, [path.join(__dirname, 'torch_methods.py'), method, dir], { input: JSON.stringify(job), timeoutMs: 30 * 60_000 });
  try {
    const out = lastJson<{ ms: number[] } & T>(res, `torch_methods.py ${method}`);
    return { ms: out.ms[out.ms.length - 1], out };
  } catch (e) {
    return { note: (e as Error).message };
  }
}

type Model = InstanceType<typeof import('../src/runtime/model').Model>;

/** The single-prompt map: every kind, every (position, layer) cell, one prompt pair. */
async function causalTraceRow(model: Model, name: string, dir: string, torch: Torch): Promise<MethodRow> {
  const ct = await import('../src/methods/causal-tracing');
  const corruption = model.tokenizer
    ? ct.altSubjectCorruption(model, '{} is located in the city of', 'The Space Needle', 'The Eiffel Tower')
    : randomPair(model.config.vocabSize);
  const window = ct.scaledWindow(model.arch, model.nLayers);
  const kinds = ct.traceKinds(model.arch);
  const layers = [...Array(model.nLayers).keys()];
  const { value: ours, ms } = await timed(() => ct.traceCorruption(model, corruption, { kinds, window }));
  const { ms: noResumeMs } = await timed(() => ct.traceCorruption(model, corruption, { kinds, window, suffix: false }));
  const T = corruption.clean.length;
  const cells = kinds.length * T * layers.length;
  const job = {
    clean: corruption.clean, corrupt: [corruption.runs[0].ids], answer: ours[0].answerId, chunk: 64,
    kinds: Object.fromEntries(kinds.map((k) => [k, layers.map((l) => ct.restoredLayers(ct.kindInfo(model.arch, k), l, window, model.nLayers))])),
  };
  const side = await torchSide<{ p: Record<string, number[][]> }>(torch, 'causal-trace', dir, job);
  let maxAbsDiff: number | null = null;
  if ('out' in side) {
    let d = 0;
    for (const r of ours) r.p.forEach((row, t) => row.forEach((p, c) => (d = Math.max(d, Math.abs(p - side.out.p[r.kind][t][c])))));
    maxAbsDiff = d;
  }
  return {
    kind: 'method', method: 'causal-trace', model: name, ms, torchMs: 'ms' in side ? side.ms : null, maxAbsDiff, targetMs: MAP_TARGET_MS[name], noResumeMs,
    work: `${kinds.join('/')}, ${T} tokens, window ${window}, ${cells} cells`, ...('note' in side ? { note: side.note } : {}),
  };
}

/** One prompt's LRE Jacobian set: J_k = ∂z/∂h_k for every stream k below z's (a whole layer sweep). */
async function lreJacobianRow(model: Model, name: string, dir: string, torch: Torch): Promise<MethodRow> {
  const lre = await import('../src/methods/lre');
  const prompt = model.tokenizer
    ? lre.subjectPrompt(model, 'The Space Needle is located in the city of', 'The Space Needle')
    : { text: '', subject: '', ids: randomPair(model.config.vocabSize).clean, subjectLast: 3 };
  const e = lre.zStream(model);
  const ks = [...Array(e).keys()];
  const D = model.config.dModel;
  const { value: ours, ms } = await timed(async () => {
    const [encoded] = await lre.encodePrompts(model, [prompt]);
    return lre.streamJacobians(model, encoded, ks, e);
  });
  const side = await torchSide<{ J: Record<string, { rows: number[]; values: number[][]; frobenius: number }> }>(torch, 'lre-jacobian', dir, { ids: prompt.ids, subjectLast: prompt.subjectLast, ks, e });
  let maxAbsDiff: number | null = null;
  let note: string | undefined = 'note' in side ? side.note : undefined;
  if ('out' in side) {
    let d = 0;
    let frob = 0;
    for (const k of ks) {
      const J = ours.get(k)!; // [D,D] row-major
      const ref = side.out.J[String(k)];
      ref.rows.forEach((i, r) => ref.values[r].forEach((v, j) => (d = Math.max(d, Math.abs(J[i * D + j] - v)))));
      let ss = 0;
      for (const v of J) ss += v * v;
      frob = Math.max(frob, Math.abs(Math.sqrt(ss) - ref.frobenius) / Math.max(ref.frobenius, 1e-30));
    }
    maxAbsDiff = d;
    note = `max |Δ| over ${side.out.J[String(ks[0])].rows.length} sampled rows of each J; ‖J‖_F relative difference ≤ ${frob.toExponential(1)}`;
  }
  return {
    kind: 'method', method: 'lre-jacobian', model: name, ms, torchMs: 'ms' in side ? side.ms : null, maxAbsDiff,
    work: `${ks.length} Jacobians [${D}×${D}], ${prompt.ids.length} tokens`, ...(note ? { note } : {}),
  };
}

/**
 * One prompt's knockout sweep: every source set × window centre (the window causal tracing scales to the
 * model). GPT-NeoX: attention knockout; Mamba: mean ablation of a, with means over 4 random 64-token
 * documents (the same tensor goes to both sides).
 */
async function knockoutRow(model: Model, name: string, dir: string, torch: Torch): Promise<MethodRow> {
  const inf = await import('../src/methods/information-flow');
  const ct = await import('../src/methods/causal-tracing');
  const { layerWindow } = await import('../src/runtime/interventions');
  const pair = model.tokenizer
    ? ct.altSubjectCorruption(model, '{} is located in the city of', 'The Space Needle', 'The Eiffel Tower')
    : randomPair(model.config.vocabSize);
  const ids = pair.clean;
  const last = await model.logits([ids], { last: true }); // [1, V]
  const answer = argmax(last);
  const pClean = probOf(last, answer);
  const prompt = { relation: 'bench', subject: pair.subject, object: '', template: '', prompt: pair.prompt, ids, subjectRange: pair.subjectRange, answer, answerText: '', pClean };
  const window = ct.scaledWindow(model.arch, model.nLayers);
  const sets = inf.SOURCE_SETS;
  const means = model.recurrent ? await inf.meanActivations(model, benchIds(4, 64, model.config.vocabSize)) : null; // [L, E]
  const { value: ours, ms } = await timed(() => (means
    ? inf.mambaKnockout(model, [prompt], { method: 'mean', means, window, sets })
    : inf.attentionKnockout(model, [prompt], { window, sets })));
  const T = ids.length;
  const centres = [...Array(model.nLayers).keys()];
  const variants = sets.flatMap((set) => centres.map((c) => ({ set, layer: c, layers: layerWindow(c, window, model.nLayers), positions: inf.sourcePositions(set, pair.subjectRange, T) })));
  const E = means?.shape[1] ?? 0;
  const job = {
    ids, answer, chunk: 64, variants: variants.map(({ layers, positions }) => ({ layers, positions })),
    means: means ? centres.map((l) => Array.from(means.data.subarray(l * E, (l + 1) * E))) : null,
  };
  const side = await torchSide<{ p: number[] }>(torch, 'knockout', dir, job);
  let maxAbsDiff: number | null = null;
  if ('out' in side) {
    const rows = ours.objects() as Array<{ set: string; layer: number; p: number }>;
    maxAbsDiff = 0;
    variants.forEach((v, j) => {
      const r = rows.find((x) => x.set === v.set && x.layer === v.layer)!;
      maxAbsDiff = Math.max(maxAbsDiff!, Math.abs(r.p - side.out.p[j]));
    });
  }
  return {
    kind: 'method', method: 'knockout', model: name, ms, torchMs: 'ms' in side ? side.ms : null, maxAbsDiff,
    work: `${means ? 'mean ablation of a' : 'attention knockout'}, ${sets.length} source sets × ${centres.length} centres, window ${window}, ${T} tokens`,
    ...('note' in side ? { note: side.note } : {}),
  };
}

/**
 * One ROME edit (the first known CounterFact record; any record on random weights) at the default
 * layer and matrix, paper settings. C (from `STATS_TOKENS` tokens) and the templates are made first, untimed.
 */
async function romeEditRow(model: Model, name: string, dir: string, torch: Torch): Promise<MethodRow> {
  const romeNs = await import('../src/methods/rome');
  const cf = await import('../src/data/counterfact');
  if (!model.tokenizer) return { kind: 'method', method: 'rome-edit', model: name, ms: NaN, torchMs: null, maxAbsDiff: null, work: 'no tokenizer', note: 'needs a tokenizer (CounterFact prompts)' };
  const record = dirOf(name) ? (await cf.knownRecords(model, cf.loadCounterFact(), { limit: 1 }))[0] : cf.loadCounterFact()[0];
  const request = cf.editRequestOf(record);
  const layer = romeNs.defaultLayer(model);
  const site = romeNs.editSite(model, layer);
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-rome-edit-bench-'));
  try {
    const stats = await romeNs.secondMoment(model, site, { samples: STATS_TOKENS, maxLength: 256, cache: cacheDir, progress: false });
    const templates = await romeNs.contextTemplates(model);
    const { value: ours, ms } = await timed(() => romeNs.rome(model, request, { layer, stats, templates }));
    const req = romeNs.normalizeRequest(model, request);
    const lookupRows = (rows: Array<{ ids: number[]; last: number }>) => rows.map((r) => ({ ids: r.ids, lookup: r.last }));
    const { rows, nRewrite } = romeNs.valueRows(model, req.template, req.subject, req.targetIds, templates, ['{} is a']);
    const bare = romeNs.subjectTokens(model, req.template, req.subject);
    const cFile = path.join(cacheDir, 'C.f32');
    fs.writeFileSync(cFile, Buffer.from(stats.mom2.buffer, stats.mom2.byteOffset, stats.mom2.byteLength));
    const job = {
      module: site.weight.replace(/\.weight$/, ''), rows: site.rows, keyDim: site.keyDim, cFile,
      keyRows: lookupRows(romeNs.contextRows(model, templates, req.template, req.subject)),
      rewrite: rows.slice(0, nRewrite), kl: rows.slice(nRewrite), bare: { ids: bare.ids, lookup: bare.last }, targetIds: req.targetIds,
      steps: 20, lr: 0.5, klFactor: 0.0625, weightDecay: 0.5, clampFactor: 3, stopLoss: 0.05, stopProb: 0.9, stopProbAfter: 12,
    };
    const side = await torchSide<{ u: number[]; w: number[]; vStar: number[]; steps: number }>(torch, 'rome-edit', dir, job);
    let maxAbsDiff: number | null = null;
    let note: string | undefined = 'note' in side ? side.note : undefined;
    if ('out' in side) {
      const rel = (a: ArrayLike<number>, b: number[]) => {
        let d = 0, m = 0;
        for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
        return d / m;
      };
      maxAbsDiff = Math.max(...ours.delta.w.map((x, i) => Math.abs(x - side.out.w[i])));
      note = `relative max |Δ|: w ${rel(ours.delta.w, side.out.w).toExponential(1)}, u ${rel(ours.delta.u, side.out.u).toExponential(1)}, v* ${rel(ours.vStar, side.out.vStar).toExponential(1)}; Adam steps ours ${ours.diagnostics.trace.length}, torch ${side.out.steps}`;
    }
    return {
      kind: 'method', method: 'rome-edit', model: name, ms, torchMs: 'ms' in side ? side.ms : null, maxAbsDiff,
      work: `${site.matrix}@L${layer}, ${templates.length} templates, "${req.prompt}" → ${req.target.trim()}`, ...(note ? { note } : {}),
    };
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

/** Tokens behind the bench's key statistics C (untimed; enough for a well-conditioned C on these shapes). */
const STATS_TOKENS = 5000;

/** The demo models' directory (trained: edit a fact they know), or null for the random-weight shapes. */
function dirOf(name: string): string | null {
  return MODELS.find((m) => m.name === name)?.dir ?? null;
}

/** An 11-token pair for checkpoints without a tokenizer: the subject (tokens 1..3) swapped for other ids. */
function randomPair(vocab: number) {
  const [clean, alt] = benchIds(2, 11, vocab);
  const corrupt = [...clean.slice(0, 1), ...alt.slice(1, 4), ...clean.slice(4)];
  const tokens = clean.map((id) => `<${id}>`);
  return { strategy: 'alt-subject' as const, clean, tokens, subjectRange: [1, 4] as [number, number], span: [1, 4] as [number, number], runs: [{ ids: corrupt }], subject: tokens.slice(1, 4).join(''), prompt: tokens.join('') };
}

/** Method rows replace earlier method rows of the same (method, model) in .cache/bench-last.json. */
function saveRows(rows: MethodRow[]): void {
  const file = path.join(CACHE, 'bench-last.json');
  let doc: { rows?: Array<Record<string, unknown>> } & Record<string, unknown> = {};
  try { doc = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { /* first run */ }
  const key = (r: Record<string, unknown>) => `${r.kind}|${r.method}|${r.model}`;
  const fresh = new Set(rows.map((r) => key(r as unknown as Record<string, unknown>)));
  doc.rows = [...(doc.rows ?? []).filter((r) => !fresh.has(key(r))), ...(rows as unknown as Array<Record<string, unknown>>)];
  fs.mkdirSync(CACHE, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
  console.error(`rows saved to ${path.relative(ROOT, file)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
