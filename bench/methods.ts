/**
 * npx tsx bench/methods.ts [--models mamba-facts,neox-facts,mamba-130m,pythia-160m] [--json]
 *
 * Method-level bench (issue #20): the experiment a researcher waits for, ours against the same work in
 * PyTorch + transformers (bench/torch_methods.py, hooks batched over cells) in one run on this machine.
 * Today: the single-prompt causal-tracing map, every kind of the architecture, one 11-token prompt pair
 * ("The Space Needle is located in the city of" vs "The Eiffel Tower ...", random ids on the
 * random-weight shapes). Each side runs once to warm up and once timed; the maps must agree (max |Δp|).
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

const args = process.argv.slice(2);
const NAMES = arg('--models', 'mamba-facts,neox-facts,mamba-130m,pythia-160m').split(',');
const JSON_OUT = args.includes('--json');
/** #20's targets for the single-prompt map, ms: the demo models, the 130m/160m shapes. */
const MAP_TARGET_MS: Record<string, number> = { 'mamba-facts': 1000, 'neox-facts': 1000, 'mamba-130m': 10_000, 'pythia-160m': 10_000 };

export interface MethodRow {
  kind: 'method';
  method: 'causal-trace';
  model: string;
  ms: number;
  torchMs: number | null;
  maxAbsDiff: number | null;
  cells: number;
  targetMs?: number;
  note?: string;
}

async function main(): Promise<void> {
  const log = (s: string) => (JSON_OUT ? undefined : console.error(s));
  const { Model } = await import('../src/runtime/model');
  const ct = await import('../src/methods/causal-tracing');
  const torch = await torchEnv(log);
  log(`method bench: ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${torch.note}`);
  const rows: MethodRow[] = [];
  for (const name of NAMES) {
    const spec = MODELS.find((m) => m.name === name);
    if (!spec) throw new Error(`--models: unknown bench model ${JSON.stringify(name)} (known: ${MODELS.map((m) => m.name).join(', ')})`);
    const dir = checkpointDir(spec, log);
    const model = await Model.load(dir);
    const corruption = model.tokenizer
      ? ct.altSubjectCorruption(model, '{} is located in the city of', 'The Space Needle', 'The Eiffel Tower')
      : randomPair(model.config.vocabSize);
    const window = ct.scaledWindow(model.arch, model.nLayers);
    const kinds = ct.traceKinds(model.arch);
    const layers = [...Array(model.nLayers).keys()];
    const trace = () => ct.traceCorruption(model, corruption, { kinds, window });
    await trace(); // warm-up: session compile
    const t0 = performance.now();
    const ours = await trace();
    const ms = performance.now() - t0;
    const T = corruption.clean.length;
    const cells = kinds.length * T * layers.length;
    let torchMs: number | null = null;
    let maxAbsDiff: number | null = null;
    let note: string | undefined;
    if (torch.python) {
      const job = {
        clean: corruption.clean, corrupt: [corruption.runs[0].ids], answer: ours[0].answerId, chunk: 64,
        kinds: Object.fromEntries(kinds.map((k) => [k, layers.map((l) => ct.restoredLayers(ct.kindInfo(model.arch, k), l, window, model.nLayers))])),
      };
      const res = await run(torch.python, [path.join(__dirname, 'torch_methods.py'), dir], { input: JSON.stringify(job), timeoutMs: 30 * 60_000 });
      try {
        const out = lastJson<{ ms: number[]; p: Record<string, number[][]> }>(res, 'torch_methods.py');
        torchMs = out.ms[out.ms.length - 1];
        maxAbsDiff = 0;
        for (const r of ours) r.p.forEach((row, t) => row.forEach((p, c) => (maxAbsDiff = Math.max(maxAbsDiff!, Math.abs(p - out.p[r.kind][t][c])))));
      } catch (e) {
        note = (e as Error).message;
      }
    }
    const row: MethodRow = { kind: 'method', method: 'causal-trace', model: name, ms, torchMs, maxAbsDiff, cells, targetMs: MAP_TARGET_MS[name], ...(note ? { note } : {}) };
    rows.push(row);
    log(`${name}: causal-trace map (${kinds.join('/')}, ${T} tokens, window ${window}, ${cells} cells): ours ${ms.toFixed(0)} ms` +
      (torchMs !== null ? `, torch ${torchMs.toFixed(0)} ms, ratio ${(torchMs / ms).toFixed(2)}×, max |Δp| ${maxAbsDiff!.toExponential(1)}` : `, no torch (${note ?? torch.note})`) +
      (row.targetMs ? `; target ≤ ${row.targetMs} ms: ${ms <= row.targetMs ? 'met' : 'missed'}` : ''));
  }
  saveRows(rows);
  if (JSON_OUT) console.log(JSON.stringify(rows));
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
