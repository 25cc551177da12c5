/**
 * config.json -> ModelConfig. Picks the dialect (HF Mamba, original
 * state-spaces Mamba, GPT-NeoX 4.x/5.x) and normalises it.
 */
import { CheckpointError } from './errors';
import { ConfigFields, show } from './config-fields';
import { parseHfFalconMamba, parseHfMamba, parseOriginalMamba } from './config-mamba';
import { parseNeox } from './config-neox';
import { parseGpt2, parseLlamaFamily } from './config-transformer';
import { parseHfMamba2, parseOriginalMamba2 } from './config-mamba2';
import { readRegularText } from './regular-file';
import { ModelConfig } from './config-types';

export type { MambaConfig, NeoxConfig, ModelConfig, TransformerConfig } from './config-types';
export type { Mamba2Config } from './config-types';

const SUPPORTED =
  '"mamba" (MambaForCausalLM), "falcon_mamba" (FalconMambaForCausalLM), "mamba2" (Mamba2ForCausalLM), "gpt_neox" (GPTNeoXForCausalLM / Pythia), ' +
  '"gpt2", "llama", "mistral", "qwen2", "qwen3", ' +
  'or an original state-spaces/mamba-* or mamba2-* config (d_model, n_layer and no model_type)';

/** `file` is only used in error messages. */
export function parseConfig(json: unknown, file: string): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CheckpointError(`${file}: config must be a JSON object, got ${show(json)}`);
  }
  const f = new ConfigFields(file, json as Record<string, unknown>);
  const modelType = f.raw('model_type');
  if (modelType === undefined) {
    if (f.has('d_model') && f.has('n_layer')) return f.object('ssm_cfg')?.raw('layer') === 'Mamba2' ? parseOriginalMamba2(f) : parseOriginalMamba(f);
    throw new CheckpointError(`${file}: config has no "model_type"; supported: ${SUPPORTED}`);
  }
  if (modelType === 'mamba') return parseHfMamba(f);
  if (modelType === 'falcon_mamba') return parseHfFalconMamba(f);
  if (modelType === 'mamba2') return parseHfMamba2(f);
  if (modelType === 'gpt_neox') return parseNeox(f);
  if (modelType === 'gpt2') return parseGpt2(f);
  if (modelType === 'llama' || modelType === 'mistral' || modelType === 'qwen2' || modelType === 'qwen3') return parseLlamaFamily(f, modelType);
  throw new CheckpointError(`${file}: unsupported "model_type" ${show(modelType)}; supported: ${SUPPORTED}`);
}

/** Read and parse a config.json file. */
export function readConfigFile(path: string): ModelConfig {
  return parseConfig(readJsonFile(path, 'config'), path);
}

/** JSON file -> value, with errors that name the file. */
export function readJsonFile(path: string, what: string): unknown {
  const text = readRegularText(path, what);
  try {
    // Python's json (transformers 4.x) writes an infinite float as a bare Infinity, which JSON lacks: read it as 1e999 (= Infinity).
    return JSON.parse(text.replace(/([:,[]\s*)(-?)Infinity(?=\s*[\],}])/g, '$1$21e999'));
  } catch (e) {
    throw new CheckpointError(`${path}: ${what} file is not valid JSON (${(e as Error).message})`);
  }
}
