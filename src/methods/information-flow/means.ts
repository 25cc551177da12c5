/**
 * Mean activations per layer over a text corpus: the replacement vector of the paper's Mamba knockout
 * (mean of a = mixer.x, paper-spec §5.2). romba averages over positions within each document and then
 * over documents (its corpus: the first 128 attribute snippets of ROME's attribute_snippets.json,
 * each truncated to 128 tokens). We have no attribute snippets; `wikitextDocuments` gives articles of
 * the bundled WikiText-2 test set (data/english_text), and any texts (e.g. fact prompts) can be used.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import { DATA_DIR } from '../../data/relations';

export const WIKITEXT_FILE = path.join(DATA_DIR, 'english_text', 'wikitext-2-raw.wiki.test.raw.txt');

/**
 * The first n articles of WikiText-2 (raw test split): split at top-level " = Title = " headings;
 * section headings dropped, paragraphs joined with newlines.
 */
export function wikitextDocuments(n: number, file = WIKITEXT_FILE): string[] {
  if (!fs.existsSync(file)) throw new FactlensError(`WikiText-2 text not found at ${file}`);
  const docs: string[] = [];
  let current: string[] = [];
  const flush = () => {
    const text = current.join('\n').trim();
    if (text) docs.push(text);
    current = [];
  };
  for (const line of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    if (docs.length >= n) break;
    if (/^ = [^=].*[^=] = $/.test(line)) flush();
    else if (/^ =+ .* =+ $/.test(line) || !line.trim()) continue;
    else current.push(line.trim());
  }
  if (docs.length < n) flush();
  return docs.slice(0, n);
}

export interface MeanOptions {
  /** Per-layer hook point to average (default 'mixer.x', the paper's a). */
  hook?: string;
  /** Tokens kept per text (default 128, as romba). */
  maxTokens?: number;
  /** Texts per forward pass (default 8). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops before the next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

/** [L, W]: for each layer, the mean over texts (strings or token ids) of the mean over each text's positions. */
export async function meanActivations(model: Model, texts: Array<string | number[]>, opts: MeanOptions = {}): Promise<Tensor> {
  if (!texts.length) throw new FactlensError('meanActivations: give at least one text');
  const local = opts.hook ?? 'mixer.x';
  const maxTokens = opts.maxTokens ?? 128;
  const bs = opts.batchSize ?? 8;
  const L = model.nLayers;
  const names = [...Array(L).keys()].map((l) => `layers.${l}.${local}`);
  let sum: Float64Array | null = null;
  let W = 0;
  let used = 0;
  for (let from = 0; from < texts.length; from += bs) {
    const rows = texts.slice(from, from + bs).map((t) => (typeof t === 'string' ? model.encode(t) : t).slice(0, maxTokens)).filter((r) => r.length);
    if (!rows.length) continue;
    used += rows.length;
    const res = await model.run(rows, { cache: names, logits: 'none', untilLayer: L, signal: opts.signal });
    names.forEach((n, l) => {
      const t = res.cache.get(n); // [B,T,W]
      W = t.stride(1);
      sum ??= new Float64Array(L * W);
      rows.forEach((ids, b) => {
        for (let p = 0; p < ids.length; p++) {
          const off = (b * t.shape[1] + p) * W;
          for (let i = 0; i < W; i++) sum![l * W + i] += t.data[off + i] / ids.length;
        }
      });
    });
    opts.onProgress?.(Math.min(from + bs, texts.length), texts.length);
  }
  if (!sum) throw new FactlensError('meanActivations: every text encoded to zero tokens');
  return new Tensor(Float32Array.from(sum as Float64Array, (x) => x / used), [L, W]);
}
