/** A model in one line, for notebooks: what it is and how big, without dumping its weights. */
import { allHookNames } from './hooks';
import type { Model } from './model';
import { formatBytes } from './tensor-summary';

export function summarizeModel(model: Model): string {
  const c = model.config;
  const hooks = allHookNames(model.arch, model.nLayers, model.parallelResidual).length;
  const params = model.weightBytes / 4;
  const size = params >= 1e9 ? `${(params / 1e9).toFixed(2)}B` : `${(params / 1e6).toFixed(1)}M`;
  return `Model ${model.name} (${model.arch}): ${model.nLayers} layers, d_model ${c.dModel}, vocabulary ${c.vocabSize}, ${size} parameters (${formatBytes(model.weightBytes)} float32), ${hooks} hook points${model.tokenizer ? '' : ', no tokenizer'}`;
}
