/**
 * npx tsx bench/attribution.ts [--models a,b] [--kinds k1,k2] [--tokens T] [--json]   (npm run bench:attribution)
 *
 * Attribution patching against exact patching of the same cells, on the same prompt pair, in one
 * run: the AtP map of every hook kind (one source forward, one base forward, one backward) and the
 * exact map (one patched run per (kind, layer, position), batched by the sweep, each starting at its
 * layer), on mamba-facts, neox-facts and random-weight mamba-130m / pythia-160m shapes (configs.ts).
 * Prints wall and process-CPU seconds of each and the ratio exact / AtP (the goal: ≥ 20× on
 * the demo models, ≥ 50× at 130m scale). The machine is shared: compare ratios, not seconds.
 */
import os from 'os';
import { arg, clock } from './clock';
import { benchIds, MODELS } from './configs';
import { checkpointDir } from './checkpoints';

const args = process.argv.slice(2);
const NAMES = arg('--models', 'mamba-facts,neox-facts,mamba-130m,pythia-160m').split(',');
const KINDS = args.includes('--kinds') ? arg('--kinds', '').split(',') : undefined;
const T = Number(arg('--tokens', '12'));
const JSON_OUT = args.includes('--json');

async function main(): Promise<void> {
  const { Model } = await import('../src/runtime/model');
  const { attributionPatching, exactPatching, logProbMetric, selectKinds } = await import('../src/methods/attribution');
  const log = (s: string) => (JSON_OUT ? undefined : console.error(s));
  log(`attribution bench: ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ${T} tokens, one pair`);
  const rows: Record<string, unknown>[] = [];
  for (const name of NAMES) {
    const spec = MODELS.find((m) => m.name === name);
    if (!spec) throw new Error(`--models: unknown bench model "${name}" (use ${MODELS.map((m) => m.name).join(', ')})`);
    const model = await Model.load(checkpointDir(spec, log));
    const [clean] = benchIds(1, T, model.config.vocabSize);
    const corrupt = clean.map((id, t) => (t >= 2 && t < 5 ? 2 + ((id * 7 + 13) % (Math.min(model.config.vocabSize, 8000) - 2)) : id)); // a 3-token "subject" swapped
    const pairs = [{ clean, corrupt }];
    const kinds = selectKinds(model, KINDS).map((k) => k.kind);
    const metric = logProbMetric([clean[T - 1]]);
    await attributionPatching(model, pairs, metric, { kinds: kinds.slice(0, 1), layers: [0] }); // warm-up: compile the sessions once
    let c = clock();
    await attributionPatching(model, pairs, metric, { kinds });
    const atp = c();
    c = clock();
    await exactPatching(model, pairs, metric, { kinds });
    const exact = c();
    const cells = kinds.length * model.nLayers * T;
    const row = { model: name, kinds: kinds.length, cells, atpSeconds: atp.wall, atpCpu: atp.cpu, exactSeconds: exact.wall, exactCpu: exact.cpu, ratio: exact.wall / atp.wall, cpuRatio: exact.cpu / atp.cpu };
    rows.push(row);
    log(`${name.padEnd(12)} ${kinds.length} kinds, ${cells} cells: AtP ${atp.wall.toFixed(2)} s (CPU ${atp.cpu.toFixed(2)}), exact ${exact.wall.toFixed(1)} s (CPU ${exact.cpu.toFixed(1)}) → ${row.ratio.toFixed(1)}× wall, ${row.cpuRatio.toFixed(1)}× CPU`);
  }
  if (JSON_OUT) console.log(JSON.stringify(rows));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
