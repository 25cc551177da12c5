/**
 * Finding a checkpoint directory's weight files: model.safetensors, or shards
 * listed by model.safetensors.index.json. Pickle files are refused with
 * instructions to convert them, since unpickling can run arbitrary code.
 */
import fs from 'fs';
import path from 'path';
import { CheckpointError } from './errors';
import { readJsonFile } from './config';
import { SafetensorsFile } from './safetensors';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface WeightFiles {
  /** Opened files by their name inside the directory. */
  files: Map<string, SafetensorsFile>;
  /** Stored tensor name -> the file name holding it. */
  location: Map<string, string>;
}

/** HF's own order: a single model.safetensors wins over an index. */
export function openWeightFiles(dir: string): WeightFiles {
  if (fs.existsSync(path.join(dir, SINGLE_FILE))) {
    const file = SafetensorsFile.open(path.join(dir, SINGLE_FILE));
    return { files: new Map([[SINGLE_FILE, file]]), location: new Map(file.names.map((n) => [n, SINGLE_FILE])) };
  }
  if (fs.existsSync(path.join(dir, INDEX_FILE))) return openSharded(dir);
  throw noWeightsError(dir);
}

function openSharded(dir: string): WeightFiles {
  const indexPath = path.join(dir, INDEX_FILE);
  const index = readJsonFile(indexPath, 'shard index');
  const map = typeof index === 'object' && index !== null ? (index as { weight_map?: unknown }).weight_map : undefined;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new CheckpointError(`${indexPath}: "weight_map" must be an object {tensor name: shard file}`);
  }
  const location = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    // Shards must sit in the directory itself: no paths, so an index cannot point elsewhere on disk.
    if (typeof shard !== 'string' || shard === '' || shard !== path.basename(shard) || shard === '..') {
      throw new CheckpointError(`${indexPath}: tensor "${name}" maps to ${JSON.stringify(shard)}, not a file name in the directory`);
    }
    location.set(name, shard);
  }
  if (location.size === 0) throw new CheckpointError(`${indexPath}: "weight_map" lists no tensors`);

  const files = new Map<string, SafetensorsFile>();
  try {
    for (const shard of new Set(location.values())) {
      const shardPath = path.join(dir, shard);
      if (!fs.existsSync(shardPath)) throw new CheckpointError(`${indexPath}: shard "${shard}" is listed but ${shardPath} does not exist`);
      files.set(shard, SafetensorsFile.open(shardPath));
    }
    for (const [name, shard] of location) {
      if (!files.get(shard)!.has(name)) {
        throw new CheckpointError(`${indexPath}: tensor "${name}" is listed in shard "${shard}" but ${path.join(dir, shard)} does not contain it`);
      }
    }
  } catch (e) {
    for (const f of files.values()) f.close();
    throw e;
  }
  return { files, location };
}

const PICKLE = /\.(bin|pt|pth|ckpt)$/;

function noWeightsError(dir: string): CheckpointError {
  const names = fs.readdirSync(dir);
  const pickles = names.filter((n) => PICKLE.test(n));
  const others = names.filter((n) => n.endsWith('.safetensors'));
  if (others.length > 0) {
    return new CheckpointError(
      `${dir}: found ${others.join(', ')} but neither ${SINGLE_FILE} nor ${INDEX_FILE}; ` +
        `rename a single file to ${SINGLE_FILE} or add the shard index`,
    );
  }
  if (pickles.length === 0) return new CheckpointError(`${dir}: no weights (${SINGLE_FILE} or ${INDEX_FILE}) in this directory`);
  const bin = path.join(dir, pickles[0]);
  return new CheckpointError(
    [
      `${dir}: only PyTorch pickle weights here (${pickles.join(', ')}). This library never unpickles files ` +
        '(loading a pickle can run arbitrary code). Convert them to safetensors once, in Python:',
      '  transformers checkpoints (MambaForCausalLM, GPTNeoXForCausalLM / Pythia):',
      `    python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('${dir}').save_pretrained('${dir}-st', safe_serialization=True)"`,
      '  original state-spaces/mamba-* checkpoints: their tied lm_head.weight shares storage with backbone.embedding.weight,',
      '  which safetensors refuses, so drop the alias (the embedding serves as the output matrix; config.json stays as it is):',
      `    python -c "import torch; from safetensors.torch import save_file; sd = torch.load('${bin}', map_location='cpu', weights_only=True); ` +
        "e, h = sd['backbone.embedding.weight'], sd.get('lm_head.weight'); " +
        "h is not None and h.data_ptr() == e.data_ptr() and sd.pop('lm_head.weight'); " +
        `save_file({k: v.contiguous() for k, v in sd.items()}, '${path.join(dir, SINGLE_FILE)}', metadata={'format': 'pt'})"`,
    ].join('\n'),
  );
}
