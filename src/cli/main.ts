/**
 * Command line, for cross-checking against a Python stack:
 *   npm run cli -- activations --model DIR --ids 1,2,3 [--hooks NAME,...|all]
 *   npm run cli -- grad --model DIR --ids 1,2,3 --wrt HOOK_OR_WEIGHT
 *   npm run cli -- generate --model DIR --prompt "..." [--max-new-tokens 20] [--top-k 0] [--seed 0]
 *   npm run cli -- hooks --model DIR
 *   npm run cli -- trace --model DIR --facts N --checkpoint FILE [--kinds resid,ssm_out,...] (resumable; see trace.ts)
 *   npm run cli -- memit --model DIR --records FILE --n N --out DIR2 [--matrix W_o] [--layers a,b,c]   (and rome: edit-commands.ts)
 *   npm run cli -- atp --model DIR --clean TEXT --corrupt TEXT --answer TEXT [--kinds k1,k2] [--metric prob|logprob]
 * JSON goes to stdout; errors go to stderr as one readable line (exit code 1).
 */
import { Model } from '../runtime/model';
import { allHookNames, hookDocs } from '../runtime/hooks';
import { gradients, nextTokenNll } from '../runtime/grad';
import { generate } from '../runtime/generate';
import { Tensor } from '../runtime/tensor';
import { traceCommand } from './trace';
import { editCommand, EDIT_USAGE } from './edit-commands';
import { resolveWeightName } from '../runtime/weight-names';
import { atpCommand, ATP_USAGE } from './atp';

const USAGE = `usage:
  activations --model DIR --ids 1,2,3 [--hooks NAME,...|all]
  grad        --model DIR --ids 1,2,3 --wrt HOOK_OR_WEIGHT_NAME
  generate    --model DIR --prompt TEXT [--max-new-tokens N] [--top-k K] [--seed S] [--temperature T]
  hooks       --model DIR
  ${ATP_USAGE}
  trace       --model DIR --facts N --checkpoint FILE [--kinds resid,ssm_out,gate,out,...] [--seed S] [--chunk K]
${EDIT_USAGE}`;

function parseArgs(argv: string[]): { cmd: string; flags: Map<string, string> } {
  const [cmd, ...rest] = argv;
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (rest[i + 1] === undefined || rest[i + 1].startsWith('--')) flags.set(a.slice(2), ''); // a switch (e.g. --known)
    else flags.set(a.slice(2), rest[++i]);
  }
  return { cmd: cmd ?? '', flags };
}

function need(flags: Map<string, string>, name: string): string {
  const v = flags.get(name);
  if (!v) throw new Error(`missing --${name}\n${USAGE}`);
  return v;
}

function parseIds(s: string): number[] {
  const ids = s.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!ids.length || ids.some((x) => !Number.isInteger(x))) throw new Error(`--ids must be a comma-separated list of integers, got "${s}"`);
  return ids;
}

/** Drop the batch dimension of a [1,...] activation. */
const unbatch = (t: Tensor) => (t.shape[0] === 1 ? t.at(0) : t).toNested();

async function main(argv: string[]): Promise<void> {
  const { cmd, flags } = parseArgs(argv);
  if (cmd === 'memit' || cmd === 'rome') return editCommand(cmd, flags, need);
  if (!['activations', 'grad', 'generate', 'hooks', 'atp', 'trace'].includes(cmd)) throw new Error(`unknown command "${cmd}"\n${USAGE}`);
  const model = await Model.load(need(flags, 'model'));
  if (cmd === 'trace') {
    process.stdout.write((await traceCommand(model, flags, (name) => need(flags, name))) + '\n');
  } else if (cmd === 'hooks') {
    const docs = hookDocs(model.arch, model.parallelResidual);
    process.stdout.write(JSON.stringify({ names: allHookNames(model.arch, model.nLayers, model.parallelResidual), docs }, null, 1) + '\n');
  } else if (cmd === 'activations') {
    const ids = parseIds(need(flags, 'ids'));
    const h = flags.get('hooks') ?? '';
    const names = h === 'all' ? allHookNames(model.arch, model.nLayers, model.parallelResidual) : h.split(',').filter(Boolean);
    const res = await model.runWithCache([ids], names);
    const hooks: Record<string, unknown> = {};
    for (const n of names) hooks[n] = unbatch(res.cache.get(n));
    process.stdout.write(JSON.stringify({ logits: unbatch(res.logits!), hooks }) + '\n');
  } else if (cmd === 'grad') {
    const ids = parseIds(need(flags, 'ids'));
    const wrt = need(flags, 'wrt');
    if (ids.length < 2) throw new Error('grad needs at least 2 tokens (the loss is the next-token NLL of the sequence)');
    const res = await gradients(model, [ids], nextTokenNll, [wrt]);
    const g = res.grads.get(wrt)!;
    const isWeight = resolveWeightName(model, wrt) !== null;
    process.stdout.write(JSON.stringify({ loss: res.loss, grad: isWeight ? g.toNested() : unbatch(g) }) + '\n');
  } else if (cmd === 'atp') {
    process.stdout.write(JSON.stringify(await atpCommand(model, flags, (n) => need(flags, n))) + '\n');
  } else {
    const gen = await generate(model, need(flags, 'prompt'), {
      maxNewTokens: Number(flags.get('max-new-tokens') ?? 20),
      topK: Number(flags.get('top-k') ?? 0),
      seed: Number(flags.get('seed') ?? 0),
      temperature: Number(flags.get('temperature') ?? 1),
    });
    process.stdout.write(JSON.stringify({ prompt: flags.get('prompt'), tokens: gen.tokens[0], text: gen.texts[0] }) + '\n');
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
