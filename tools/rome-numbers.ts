/**
 * npx tsx tools/rome-numbers.ts [--out FILE] [--compare FILE]
 *
 * The "numbers unchanged" record for work on ROME's v* (rome/value*.ts, runtime/losses.ts): on both
 * demo models, one ROME edit at each editable matrix (mamba-facts W_a, W_g, W_o at layer 4; neox-facts
 * W_down at layer 3), with 3 fixed context templates, 20 steps, C = I (the statistics are not what
 * changes). Records each edit's v* loss trace and the sha256 of the edited weight; and MEMIT's δ loss
 * traces (residual target) for 3 requests. --compare prints, per edit, whether the hashes agree and the
 * largest relative difference of the traces.
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { Model } from '../src/runtime/model';
import { rome } from '../src/methods/rome/edit';
import { EditMatrix } from '../src/methods/rome/sites';
import { normalizeRequest } from '../src/methods/rome/edit';
import { optimizeDeltas, residualTarget } from '../src/methods/memit/memit';
import { arg } from '../bench/clock';

const ROOT = path.join(__dirname, '..');
const TEMPLATES = ['{}', 'Yesterday it rained. {}', 'In the news: {}'];
const EDITS: Array<{ model: string; matrix: EditMatrix; layer: number; subject: string; target: string }> = [
  { model: 'mamba-facts', matrix: 'W_a', layer: 4, subject: 'Big Ben', target: 'Rome' },
  { model: 'mamba-facts', matrix: 'W_g', layer: 4, subject: 'Big Ben', target: 'Rome' },
  { model: 'mamba-facts', matrix: 'W_o', layer: 4, subject: 'Big Ben', target: 'Rome' },
  { model: 'neox-facts', matrix: 'W_down', layer: 3, subject: 'The Space Needle', target: 'Paris' },
];
const MEMIT_REQUESTS = [
  { prompt: '{} is located in the city of', subject: 'Big Ben', target: 'Rome' },
  { prompt: '{} is located in the city of', subject: 'The Space Needle', target: 'Paris' },
  { prompt: '{} is located in the city of', subject: 'The Colosseum', target: 'London' },
];

interface Entry { name: string; losses: number[]; sha256?: string }

async function record(): Promise<Entry[]> {
  const out: Entry[] = [];
  const models = new Map<string, Model>();
  const load = async (name: string) => models.get(name) ?? models.set(name, await Model.load(path.join(ROOT, 'data', 'models', name))).get(name)!;
  for (const e of EDITS) {
    const model = await load(e.model);
    const r = await rome(model, { prompt: '{} is located in the city of', subject: e.subject, target: e.target }, { layer: e.layer, matrix: e.matrix, templates: TEMPLATES, mom2Adjustment: false, steps: 20 });
    const w = r.model.weight(r.site.weight).data; // [out,in]
    const sha256 = crypto.createHash('sha256').update(Buffer.from(w.buffer, w.byteOffset, w.byteLength)).digest('hex');
    out.push({ name: `rome ${e.model} ${e.matrix}@${e.layer}`, losses: r.diagnostics.trace.map((s) => s.loss), sha256 });
  }
  for (const [name, layer] of [['mamba-facts', 6], ['neox-facts', 4]] as const) {
    const model = await load(name);
    const reqs = MEMIT_REQUESTS.map((q) => normalizeRequest(model, q));
    const ds = await optimizeDeltas(model, reqs, residualTarget(model, layer), TEMPLATES, { steps: 20 });
    ds.forEach((d, j) => out.push({ name: `memit-delta ${name} resid@${layer} request ${j}`, losses: d.trace.map((s) => s.loss) }));
  }
  return out;
}

async function main(): Promise<void> {
  const now = await record();
  const outFile = arg('--out', '');
  if (outFile) fs.writeFileSync(outFile, JSON.stringify(now, null, 1));
  const cmpFile = arg('--compare', '');
  if (!cmpFile) return void console.log(JSON.stringify(now, null, 1));
  const before: Entry[] = JSON.parse(fs.readFileSync(cmpFile, 'utf8'));
  let worst = 0;
  for (const b of before) {
    const a = now.find((x) => x.name === b.name);
    if (!a) { console.log(`${b.name}: missing`); continue; }
    const rel = b.losses.map((x, i) => Math.abs(x - (a.losses[i] ?? NaN)) / Math.max(Math.abs(x), 1e-30));
    const maxRel = rel.reduce((m, x) => (Number.isNaN(x) ? Infinity : Math.max(m, x)), 0);
    worst = Math.max(worst, maxRel);
    const hash = b.sha256 === undefined ? '' : a.sha256 === b.sha256 ? ' weights identical' : ' WEIGHTS DIFFER';
    console.log(`${b.name}: steps ${b.losses.length} → ${a.losses.length}, max rel Δloss ${maxRel.toExponential(2)}${hash}`);
  }
  console.log(`max relative difference of any loss: ${worst.toExponential(2)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
