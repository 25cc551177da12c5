/**
 * ROME's context templates (paper-spec §3.3 step 1): "{}" plus short texts the model itself
 * samples from "<|endoftext|>" with seeded top-k sampling, each turned into "<text>. {}".
 * The paper's lengths [[5,10],[10,10]] give 10 texts of 5 new tokens and 10 of 10: 21 templates.
 * Generated once per loaded model and options (edited views of that model reuse them).
 */
import { generate } from '../../runtime/generate';
import type { Model } from '../../runtime/model';

export interface ContextTemplateOptions {
  /** [new tokens, how many] pairs (default [[5,10],[10,10]]). */
  lengths?: [number, number][];
  /** Top-k of the sampling (default 5). */
  topK?: number;
  /** Seed of the sampling (default 0); group i uses seed + i. */
  seed?: number;
}

export const PAPER_TEMPLATE_LENGTHS: [number, number][] = [[5, 10], [10, 10]];

const cache = new WeakMap<object, Map<string, Promise<string[]>>>();

export function contextTemplates(model: Model, opts: ContextTemplateOptions = {}): Promise<string[]> {
  const lengths = opts.lengths ?? PAPER_TEMPLATE_LENGTHS;
  const key = JSON.stringify([lengths, opts.topK ?? 5, opts.seed ?? 0]);
  let perModel = cache.get(model.config);
  if (!perModel) cache.set(model.config, (perModel = new Map()));
  let p = perModel.get(key);
  if (!p) {
    p = sampleTemplates(model, lengths, opts.topK ?? 5, opts.seed ?? 0);
    perModel.set(key, p);
    p.catch(() => perModel!.delete(key));
  }
  return p;
}

async function sampleTemplates(model: Model, lengths: [number, number][], topK: number, seed: number): Promise<string[]> {
  const eos = model.config.eosTokenId;
  const out = ['{}'];
  for (const [i, [len, n]] of lengths.entries()) {
    if (n <= 0) continue;
    const rows = Array.from({ length: n }, () => [eos]);
    const gen = await generate(model, rows, { maxNewTokens: len, topK, seed: seed + i, stopAtEos: false });
    for (const toks of gen.tokens) {
      const text = model.decode(toks.filter((t) => t !== eos));
      out.push(text.replace(/[{}]/g, ' ') + '. {}');
    }
  }
  return out;
}
