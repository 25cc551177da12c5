/**
 * AtP, AtP* and integrated gradients against exact patching on the demo models over N known facts
 * (default 50): the agreement table the README and the issue note quote. Usage:
 *   npx tsx tools/atp-agreement.ts [N] > out/atp-agreement.json
 */
import { Model, knownFacts, loadRelations, causalTracing, attribution } from '../src';

const N = Number(process.argv[2] ?? 50);
const KINDS: Record<string, string[]> = {
  mamba: ['resid_pre', 'mixer.x', 'mixer.z', 'mixer.conv', 'mixer.dt', 'mixer.B', 'mixer.C', 'mixer.ssm_out', 'mixer.gate', 'mixer.out'],
  gpt_neox: ['resid_pre', 'attn.q', 'attn.k', 'attn.v', 'attn.pattern', 'attn.out', 'mlp.pre', 'mlp.out'],
};

async function main() {
  const out: unknown[] = [];
  for (const dir of ['data/models/mamba-facts', 'data/models/neox-facts']) {
    const model = await Model.load(dir);
    const known = await knownFacts(model, loadRelations(), { limit: 12, batchSize: 32 });
    const pairs = (await attribution.factPairs(model, causalTracing.roundRobin(known, N), { pool: known, seed: 0 })).slice(0, N);
    const metric = attribution.probMetric(pairs.map((p) => p.answer));
    const kinds = KINDS[model.arch];
    const t0 = Date.now();
    const exact = await attribution.exactPatching(model, pairs, metric, { kinds });
    const exactS = (Date.now() - t0) / 1000;
    for (const method of ['atp', 'atp*', 'ig'] as const) {
      const t1 = Date.now();
      const c = await attribution.compareWithExact(model, pairs, metric, { kinds, method, exact, topK: 10 });
      const s = (Date.now() - t1) / 1000;
      for (const row of c.table.objects()) out.push({ model: model.name, ...row, seconds: s, exactSeconds: exactS });
      process.stderr.write(`${model.name} ${method}: ${s.toFixed(1)} s (exact ${exactS.toFixed(1)} s, ${pairs.length} pairs)\n`);
    }
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main();
