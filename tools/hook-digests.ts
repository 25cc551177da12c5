/**
 * sha256 of every hook activation and of the logits of a checkpoint, for two prompts (B = 2, padded),
 * so a refactor of a graph can show that its numbers did not move: run before and after, diff the files.
 *   npx tsx tools/hook-digests.ts MODEL_DIR OUT.json [DUMP_DIR]
 * DUMP_DIR (optional) also receives each activation as raw float32 bytes (NAME.f32), from which max |Δ|
 * can be measured where two digests differ.
 */
import { createHash } from 'crypto';
import fs from 'fs';
import path from 'path';
import { Model } from '../src/runtime/model';
import { allHookNames } from '../src/runtime/hooks';

async function main(): Promise<void> {
  const [dir, out, dump] = process.argv.slice(2);
  if (!dir || !out) throw new Error('usage: tsx tools/hook-digests.ts MODEL_DIR OUT.json [DUMP_DIR]');
  const model = await Model.load(dir);
  const ids = [[3, 17, 250, 9, 41, 100, 7], [88, 2, 7, 201]]; // B = 2, second row padded
  const names = allHookNames(model.arch, model.nLayers, model.parallelResidual);
  const res = await model.runWithCache(ids, names);
  const digests: Record<string, string> = {};
  const put = (name: string, data: Float32Array) => {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    digests[name] = createHash('sha256').update(bytes).digest('hex');
    if (dump) fs.writeFileSync(path.join(dump, `${name}.f32`), bytes);
  };
  if (dump) fs.mkdirSync(dump, { recursive: true });
  for (const n of names) put(n, res.cache.get(n).data);
  if (res.logits) put('logits(result)', res.logits.data);
  fs.writeFileSync(out, JSON.stringify(digests, null, 1));
  console.log(`${Object.keys(digests).length} digests → ${out}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
