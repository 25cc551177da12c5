/**
 * Weight names as users type them: canonical ("layers.1.mixer.out_proj.weight") or the checkpoint's
 * own Hugging Face spelling in any supported dialect ("backbone.layers.1.mixer.out_proj.weight",
 * "backbone.embedding.weight" of the original state-spaces files, "gpt_neox.layers.0.attention.dense.weight"),
 * mapped by the same rule the loader uses (io/weights.ts canonicalName).
 */
import { canonicalName, unembeddingName } from '../io/weights';
import type { Model } from './model';

/** The canonical weight name for `name`, or null when it names no weight of this model (e.g. a hook). */
export function resolveWeightName(model: Model, name: string): string | null {
  const known = new Set(model.weightNames());
  const head = unembeddingName(model.arch); // a tied head is no stored weight, but model.weight resolves it
  for (const candidate of [name, canonicalName(name, model.arch)]) {
    if (candidate !== null && (known.has(candidate) || (candidate === head && model.config.tieEmbeddings))) return candidate;
  }
  return null;
}
