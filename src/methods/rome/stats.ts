/**
 * Second-moment statistics C = E[k kᵀ] of the input k of an edited matrix (paper-spec §3.4): the
 * corpus is streamed through the model up to the layer (untilLayer), the keys at every real
 * (non-pad) token are gathered, and Σ k kᵀ is accumulated chunk by chunk with an ONNX MatMul
 * (kᵀk of a [n,d] chunk) into a float64 sum; memory stays O(d² + chunk). One pass serves any number
 * of (layer, key hook) sites. Results are cached in memory and on disk (stats-cache.ts).
 */
import { FactlensError } from '../../errors';
import { Graph } from '../../graph/ir';
import { Compiled } from '../../graph/session';
import type { Model } from '../../runtime/model';
import { makeBatch } from '../../runtime/batch';
import { resolveHook } from '../../runtime/hooks';
import { Tensor } from '../../runtime/tensor';
import { progress as progressBar } from '../../viz/progress';
import { Corpus, textCorpus, wikitextCorpus } from './corpus';
import { Cholesky, choleskySolve } from './linalg';
import { factorize } from './blocked';
import { keyFingerprint, readStats, StatsKey, statsPath, writeStats } from './stats-cache';
import type { EditSite } from './sites';

export interface StatsOptions {
  /** Bundled WikiText-2 by default; or a Corpus, a text file path, paths, or raw text. */
  corpus?: Corpus | string | string[];
  /** Number of tokens (samples of k) to average over (default 100,000). */
  samples?: number;
  /** Documents are truncated to this many tokens (default 2048, as ROME). */
  maxLength?: number;
  /** Tokens per forward batch, padding included (default 4096). */
  batchTokens?: number;
  /** Disk cache: false to disable, or a directory (default $FACTLENS_CACHE or .cache/factlens). */
  cache?: boolean | string;
  /** Show a progress bar (default true; quiet outside notebooks and terminals). */
  progress?: boolean;
  /** Stops the accumulation before its next batch (runtime/abort.ts). */
  signal?: AbortSignal;
}

/** C for one site, with its Cholesky factor for solves. */
export class SecondMoment {
  private factorMemo?: Cholesky;

  constructor(
    readonly key: StatsKey,
    readonly dim: number,
    /** Row-major [dim,dim] C = Σ k kᵀ / count. */
    readonly mom2: Float32Array,
    readonly count: number,
    /** Where it is cached on disk (null if not). */
    readonly file: string | null,
    factor?: Cholesky,
    /** True when this was read from the disk cache. */
    readonly fromCache = false,
  ) {
    this.factorMemo = factor;
  }

  /** The Cholesky factor of C (+ ridge if C is singular), computed once. */
  async factorize(): Promise<Cholesky> {
    if (!this.factorMemo) this.factorMemo = await factorize(this.mom2, this.dim);
    return this.factorMemo;
  }

  /** x = C⁻¹ k (by Cholesky solves, never forming C⁻¹). */
  async solve(k: ArrayLike<number>): Promise<Float64Array> {
    return choleskySolve(await this.factorize(), k);
  }
}

const memory = new Map<string, SecondMoment>();
const mmCache = new Map<number, Promise<Compiled>>();

/** A compiled kᵀk: [n,d] → [d,d]. */
function gramGraph(d: number): Promise<Compiled> {
  let c = mmCache.get(d);
  if (!c) {
    const g = new Graph(`gram_${d}`);
    const k = g.input('k', ['n', d]); // [n,d]
    g.output('kk', g.matmul(g.transpose(k, [1, 0]), k)); // [d,d]
    c = Compiled.create(g);
    mmCache.set(d, c);
  }
  return c;
}

function resolveCorpus(c: StatsOptions['corpus']): Corpus {
  if (!c) return wikitextCorpus();
  if (typeof c === 'object' && !Array.isArray(c)) return c;
  return textCorpus(c);
}

/** Second moments for several sites (deduplicated by key hook), computing the missing ones in one pass. */
export async function secondMoments(model: Model, sites: Array<EditSite | { layer: number; keyHook: string }>, opts: StatsOptions = {}): Promise<SecondMoment[]> {
  const corpus = resolveCorpus(opts.corpus);
  const samples = opts.samples ?? 100_000;
  const maxPos = model.arch === 'gpt_neox' ? model.neoxConfig.maxPositions : undefined;
  const maxLength = Math.min(opts.maxLength ?? 2048, maxPos ?? Infinity);
  if (!(samples > 0) || !Number.isInteger(samples)) throw new FactlensError(`stats: samples must be a positive integer, got ${samples}`);
  const root = typeof opts.cache === 'string' ? opts.cache : undefined;
  const useDisk = opts.cache !== false;
  const keys = sites.map((s): StatsKey => {
    const keyHook = resolveHook(s.keyHook, model.arch, model.nLayers, model.parallelResidual).name;
    return { model: model.name, fingerprint: keyFingerprint(model, keyHook, s.layer), layer: s.layer, keyHook, corpus: corpus.name, corpusId: corpus.id, samples, maxLength };
  });
  const id = (k: StatsKey) => JSON.stringify(k);
  const missing = new Map<string, StatsKey>();
  for (const k of keys) {
    if (memory.has(id(k))) continue;
    const file = useDisk ? statsPath(k, root) : null;
    const stored = file ? readStats(file, k) : null;
    if (stored && file) memory.set(id(k), new SecondMoment(k, stored.dim, stored.mom2, stored.count, file, stored.factor, true));
    else missing.set(id(k), k);
  }
  if (missing.size) {
    const todo = [...missing.values()];
    const sums = await accumulate(model, corpus, todo, samples, maxLength, opts);
    for (const [i, k] of todo.entries()) {
      const { sum, dim, count } = sums[i];
      const mom2 = new Float32Array(dim * dim);
      for (let j = 0; j < mom2.length; j++) mom2[j] = sum[j] / count;
      const factor = await factorize(mom2, dim);
      const file = useDisk ? statsPath(k, root) : null;
      if (file) writeStats(file, k, { mom2, dim, count, factor }, { corpus_documents: String(corpus.documents.length) });
      memory.set(id(k), new SecondMoment(k, dim, mom2, count, file, factor));
    }
  }
  return keys.map((k) => memory.get(id(k))!);
}

export async function secondMoment(model: Model, site: EditSite | { layer: number; keyHook: string }, opts: StatsOptions = {}): Promise<SecondMoment> {
  return (await secondMoments(model, [site], opts))[0];
}

/** Forget the in-memory statistics (the disk cache stays). */
export function clearStatsMemory(): void {
  memory.clear();
}

/** Tokenise documents until `samples` tokens (the last one cut to fit), each at most maxLength. */
export function sampleTokens(model: Model, corpus: Corpus, samples: number, maxLength: number): number[][] {
  const docs: number[][] = [];
  let n = 0;
  for (const d of corpus.documents) {
    if (n >= samples) break;
    const ids = model.encode(d).slice(0, Math.min(maxLength, samples - n));
    if (!ids.length) continue;
    docs.push(ids);
    n += ids.length;
  }
  if (n < samples) throw new FactlensError(`stats: the corpus "${corpus.name}" has only ${n} tokens (documents of at most ${maxLength}); ask for samples ≤ ${n}`);
  return docs;
}

async function accumulate(model: Model, corpus: Corpus, keys: StatsKey[], samples: number, maxLength: number, opts: StatsOptions): Promise<{ sum: Float64Array; dim: number; count: number }[]> {
  const docs = sampleTokens(model, corpus, samples, maxLength).sort((a, b) => b.length - a.length);
  const until = Math.max(...keys.map((k) => k.layer)) + 1;
  const hooks = [...new Set(keys.map((k) => k.keyHook))];
  const acc = new Map<string, { sum: Float64Array; dim: number; count: number }>();
  const budget = opts.batchTokens ?? 4096;
  const bar = opts.progress === false ? null : progressBar(samples, `C = E[kkᵀ] for ${hooks.length} site(s), ${model.name}`);
  try {
    for (let i = 0; i < docs.length; ) {
      // Longest first; rows are right-padded to a multiple of 64 tokens so that few sequence
      // lengths (compiled shapes) occur. Pads come after the real tokens, so they change nothing.
      const T = Math.ceil(docs[i].length / 64) * 64;
      const B = Math.max(1, Math.floor(budget / T));
      const rows = docs.slice(i, i + B);
      i += rows.length;
      const lengths = rows.map((r) => r.length);
      const padded = rows.map((r) => r.concat(new Array<number>(T - r.length).fill(model.padId)));
      const res = await model.run(makeBatch(padded, model.config.vocabSize, model.padId), { untilLayer: until, cache: hooks, logits: 'none', signal: opts.signal });
      for (const h of hooks) {
        const act = res.cache.get(h); // [B,T,d]
        const d = act.shape[2];
        const kept = gatherReal(act, lengths); // [n,d]
        const gram = (await (await gramGraph(d)).run({ k: kept })).kk; // [d,d]
        let a = acc.get(h);
        if (!a) acc.set(h, (a = { sum: new Float64Array(d * d), dim: d, count: 0 }));
        for (let j = 0; j < gram.data.length; j++) a.sum[j] += gram.data[j];
        a.count += kept.shape[0];
      }
      bar?.tick(rows.reduce((s, r) => s + r.length, 0));
    }
  } finally {
    bar?.done();
  }
  return keys.map((k) => acc.get(k.keyHook)!);
}

/** The real (non-pad) token rows of a right-padded [B,T,d] activation: [n,d]. */
function gatherReal(act: Tensor, lengths: number[]): Tensor {
  const [B, T, d] = act.shape;
  const n = lengths.reduce((s, x) => s + x, 0);
  const out = new Float32Array(n * d); // [n,d]
  let o = 0;
  for (let b = 0; b < B; b++) {
    out.set(act.data.subarray(b * T * d, (b * T + lengths[b]) * d), o);
    o += lengths[b] * d;
  }
  return new Tensor(out, [n, d]);
}
