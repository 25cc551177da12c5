/**
 * `memit` and `rome` subcommands: edit the first N CounterFact records of a file into a model,
 * save the edited model as a Hugging Face checkpoint (Model.save) and print the edited records'
 * ES / PS / NS (and S, magnitudes) as JSON, scored on the weights as saved (asStored).
 *   memit --model DIR --records FILE --n N [--matrix W_o] [--layers a,b,c] [--algorithm memit|emmet] --out DIR2
 *   rome  --model DIR --records FILE --n N [--matrix W_o] [--layers a] --out DIR2   (sequential ROME)
 * Optional: --known (keep only records the model completes with the true object first),
 * --steps S (v* steps, default 20), --stats-samples T (tokens for C, default 100,000).
 */
import { Model } from '../runtime/model';
import { loadCounterFact, knownRecords, editRequestOf } from '../data/counterfact';
import { scoreCase, summarize } from '../methods/rome/counterfact-eval';
import { romeSequential, defaultLayer } from '../methods/rome/edit';
import { memit } from '../methods/memit/memit';

export const EDIT_USAGE = `  memit       --model DIR --records FILE --n N --out DIR2 [--matrix W_o] [--layers a,b,c] [--algorithm memit|emmet] [--known] [--steps S] [--stats-samples T]
  rome        --model DIR --records FILE --n N --out DIR2 [--matrix W_o] [--layers a] [--known] [--steps S] [--stats-samples T]`;

type Flags = Map<string, string>;

function positiveInt(flags: Flags, name: string, fallback?: number): number {
  const raw = flags.get(name);
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`missing --${name}\n${EDIT_USAGE}`);
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return n;
}

function parseLayers(s: string | undefined): number[] | undefined {
  if (s === undefined) return undefined;
  const layers = s.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!layers.length || layers.some((x) => !Number.isInteger(x))) throw new Error(`--layers must be a comma-separated list of layer numbers, got "${s}"`);
  return layers;
}

export async function editCommand(cmd: 'memit' | 'rome', flags: Flags, need: (f: Flags, name: string) => string): Promise<void> {
  const dir = need(flags, 'model');
  const file = need(flags, 'records');
  const out = need(flags, 'out');
  const n = positiveInt(flags, 'n');
  const steps = positiveInt(flags, 'steps', 20);
  const samples = positiveInt(flags, 'stats-samples', 100_000);
  const layers = parseLayers(flags.get('layers'));
  const algorithm = flags.get('algorithm') ?? 'memit';
  if (algorithm !== 'memit' && algorithm !== 'emmet') throw new Error(`--algorithm must be memit or emmet, got "${algorithm}"`);
  if (cmd === 'rome' && layers && layers.length !== 1) throw new Error(`rome edits one layer: give --layers with one layer, got "${flags.get('layers')}"`);
  let records = loadCounterFact(file);
  const model = await Model.load(dir);
  if (flags.has('known')) records = await knownRecords(model, records, { limit: n });
  if (records.length < n) throw new Error(`${file}: ${records.length} ${flags.has('known') ? 'known ' : ''}records, --n asks for ${n}`);
  records = records.slice(0, n);
  const matrix = flags.get('matrix');
  const stats = { samples, progress: false };
  const t0 = Date.now();
  const edited = cmd === 'memit'
    ? (await memit(model, records.map(editRequestOf), { matrix, layers, algorithm, steps, stats })).model
    : (await romeSequential(model, records.map(editRequestOf), { matrix, layer: layers?.[0] ?? defaultLayer(model), steps, stats })).pop()!.model;
  const editSeconds = (Date.now() - t0) / 1000;
  const saved = edited.save(out);
  const stored = edited.asStored();
  const cases = [];
  for (const r of records) cases.push(await scoreCase(stored, r));
  const s = summarize(cases);
  process.stdout.write(JSON.stringify({
    method: cmd === 'memit' ? algorithm : 'rome-sequential', model: dir, out: saved.dir, n, edited: saved.edited.map((e) => e.storedName),
    ES: s.ES, PS: s.PS, NS: s.NS, S: s.S, EM: s.EM, PM: s.PM, NM: s.NM, editSeconds,
  }) + '\n');
}
