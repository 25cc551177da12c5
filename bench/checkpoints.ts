/**
 * Random-weight checkpoints of real shapes, written once as Hugging Face
 * directories (config.json + float32 safetensors under the stored names
 * transformers uses) so that both this library and transformers load the
 * very same file. Checkpoints over SHARD_BYTES are sharded with a
 * model.safetensors.index.json, as save_pretrained does, and written one
 * tensor at a time (a 2.8b checkpoint is 11 GB). Values are scaled like
 * trained weights (norms 1, linears ~U(±0.035), Mamba's A_log = log(1..N),
 * dt bias for Δ ≈ 0.01) so no path overflows.
 */
import fs from 'fs';
import path from 'path';
import { expectedWeights, isStoredTransposed, parseConfig, writeSafetensors, type ModelConfig } from '../src/io';
import { TRANSFORMER_ADAPTERS } from '../src/models/transformer-adapters';
import { type LazyWritableTensor, writeShardedSafetensors } from '../src/io/safetensors';
import { BenchModel, CACHE } from './configs';

/** Shard size of generated checkpoints (save_pretrained's default is 5 GB; ours stays under 4 GiB). */
const SHARD_BYTES = 4e9;

/** Directory of a bench model, generating its weights on first use. */
export function checkpointDir(m: BenchModel, log: (s: string) => void = () => {}): string {
  if (m.dir) return m.dir;
  const dir = path.join(CACHE, 'bench-models', m.name);
  const done = path.join(dir, '.complete');
  const cfgText = JSON.stringify(m.config, null, 2);
  if (fs.existsSync(done) && fs.readFileSync(path.join(dir, 'config.json'), 'utf8') === cfgText) return dir;
  log(`generating random ${m.name} weights in ${path.relative(process.cwd(), dir)} (once) ...`);
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(done, { force: true });
  const cfg = parseConfig(m.config, `${m.name}/config.json`);
  // Tensors in shards of at most SHARD_BYTES, each made when its shard is written.
  const shards: Record<string, LazyWritableTensor>[] = [{}];
  let shardBytes = 0;
  let seed = 1;
  for (const [name, shape] of expectedWeights(cfg)) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    if (shardBytes > 0 && shardBytes + bytes > SHARD_BYTES) {
      shards.push({});
      shardBytes = 0;
    }
    const s = seed++;
    // GPT-2's Conv1D weights are stored [in,out]; random values need no transposing, only the stored shape.
    const stored = isStoredTransposed(name, cfg.arch) ? [...shape].reverse() : shape;
    shards[shards.length - 1][storedName(name, cfg.arch)] = { dtype: 'F32', shape: stored, make: () => init(name, shape, s) };
    shardBytes += bytes;
  }
  if (shards.length === 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), shards[0], { format: 'pt' });
  } else {
    log(`  ${shards.length} shards ...`);
    writeShardedSafetensors(dir, shards, { format: 'pt' });
  }
  fs.writeFileSync(path.join(dir, 'config.json'), cfgText);
  fs.writeFileSync(done, '');
  return dir;
}

/** The name transformers' save_pretrained uses for a canonical weight name. */
function storedName(name: string, arch: ModelConfig['arch']): string {
  if (arch === 'mamba' || arch === 'mamba2') return name === 'lm_head.weight' ? name : `backbone.${name}`;
  if (arch === 'gpt_neox') return name === 'embed_out.weight' ? name : `gpt_neox.${name}`;
  const a = TRANSFORMER_ADAPTERS[arch];
  if (name === a.head) return name;
  return a.modelPrefix + (name.startsWith('layers.') ? a.layerPrefix + name.slice('layers.'.length) : name);
}

function init(name: string, shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (/norm(_f)?\.weight$|layernorm\.weight$|final_layer_norm\.weight$/.test(name)) return out.fill(1);
  if (/layernorm\.bias$|final_layer_norm\.bias$|\.bias$/.test(name) && !name.endsWith('dt_proj.bias')) return out; // zeros (not dt_bias)
  if (name.endsWith('A_log')) {
    const N = shape[1] ?? shape[0]; // Mamba [E,N]: log(1..N) per channel; Mamba-2 [H]: log(1..H), transformers' init
    for (let i = 0; i < n; i++) out[i] = Math.log(1 + (i % N));
    return out;
  }
  if (name.endsWith('mixer.D')) return out.fill(1);
  if (name.endsWith('dt_proj.bias') || name.endsWith('mixer.dt_bias')) return out.fill(Math.log(Math.expm1(0.01))); // softplus⁻¹(0.01)
  let s = seed >>> 0 || 1;
  const scale = name.includes('conv1d') ? 0.5 : 0.035;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}
