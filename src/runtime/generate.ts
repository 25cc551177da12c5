/**
 * Text generation: greedy or seeded top-k sampling. All rows of a call decode as one batch on the
 * whole-stack decoder (decoder.ts: one session call per token, Mamba state or transformer key/value
 * cache carried in preallocated buffers), whatever their lengths. Models loaded with packed weights
 * (whose float32 weights are not in memory) keep the per-layer path: rows in groups of equal length,
 * Mamba stepping its state, transformers rerunning the prefix.
 *
 * Sampling draws one number per row per step, rows in order, from one seeded stream: the same draws
 * as the per-layer path when all rows have one length (ragged rows were drawn group by group there).
 */
import { FactlensError } from '../errors';
import type { Model, ModelInput } from './model';
import { makeBatch } from './batch';
import { MambaState } from './forward';
import { Tensor } from './tensor';
import { Decoder } from './decoder';

export interface GenerateOptions {
  maxNewTokens?: number; // default 20
  /** 0 or undefined: greedy; otherwise sample among the k most likely tokens. */
  topK?: number;
  temperature?: number; // default 1
  seed?: number; // default 0
  /** Stop a row at the end-of-text token (kept out of the output). Default true. */
  stopAtEos?: boolean;
}

export interface Generation {
  prompts: number[][];
  /** New tokens per row. */
  tokens: number[][];
  /** Decoded new text per row (when the model has a tokenizer). */
  texts: string[];
}

/** Small, fast, seedable PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pickToken(logits: Float32Array, topK: number, temperature: number, random: () => number): number {
  if (!topK) {
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
    return best;
  }
  const idx = [...logits.keys()].sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const w = idx.map((v) => Math.exp((logits[v] - logits[idx[0]]) / temperature));
  const total = w.reduce((p, q) => p + q, 0);
  let r = random() * total;
  for (let i = 0; i < idx.length; i++) if ((r -= w[i]) <= 0) return idx[i];
  return idx[idx.length - 1];
}

export async function generate(model: Model, input: ModelInput, opts: GenerateOptions = {}): Promise<Generation> {
  const prompts = model.batch(input).rows;
  const maxNew = opts.maxNewTokens ?? 20;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new FactlensError(`generate: maxNewTokens must be a whole number >= 0, got ${maxNew}`);
  const random = rng(opts.seed ?? 0);
  let tokens: number[][] = prompts.map(() => []);
  if (maxNew > 0 && !model.packedWeights) {
    const decoder = await Decoder.open(model, prompts, maxNew);
    tokens = await sampleRows(model, prompts.length, opts, random, (step, last) => (step === 0 ? decoder.first() : decoder.next(last)));
  } else if (maxNew > 0) {
    // Group rows by prompt length so each group runs as one unpadded batch.
    const groups = new Map<number, number[]>();
    prompts.forEach((p, i) => groups.set(p.length, [...(groups.get(p.length) ?? []), i]));
    for (const rows of groups.values()) {
      const out = await sampleRows(model, rows.length, opts, random, perLayerSteps(model, rows.map((r) => prompts[r])));
      rows.forEach((r, i) => (tokens[r] = out[i]));
    }
  }
  const texts = model.tokenizer ? tokens.map((t) => model.decode(t)) : tokens.map(() => '');
  return { prompts, tokens, texts };
}

/** Next-token logits [B,1,V] at `step` (0: after the prompts), given each row's token chosen last step. */
type NextLogits = (step: number, last: number[]) => Promise<Tensor>;

/** The sampling loop: a token per row per step until maxNewTokens or every row has ended. */
async function sampleRows(model: Model, B: number, opts: GenerateOptions, random: () => number, logitsAt: NextLogits): Promise<number[][]> {
  const maxNew = opts.maxNewTokens ?? 20;
  const eos = model.config.eosTokenId;
  const stop = opts.stopAtEos ?? true;
  const V = model.config.vocabSize;
  const done = new Array<boolean>(B).fill(false);
  const out: number[][] = Array.from({ length: B }, () => []);
  let last: number[] = [];
  for (let step = 0; step < maxNew && done.some((d) => !d); step++) {
    const logits = await logitsAt(step, last); // [B,1,V]
    last = out.map((_, b) => pickToken(logits.data.subarray(b * V, (b + 1) * V), opts.topK ?? 0, opts.temperature ?? 1, random));
    last.forEach((next, b) => {
      if (done[b]) return;
      if (stop && next === eos) done[b] = true;
      else out[b].push(next);
    });
  }
  return out;
}

/** The per-layer path for rows of one length: Mamba steps its state, a transformer reruns the prefix. */
function perLayerSteps(model: Model, prompts: number[][]): NextLogits {
  const V = model.config.vocabSize;
  const seqs = prompts.map((p) => [...p]);
  let state: MambaState | undefined;
  return async (step, last) => {
    last.forEach((t, b) => seqs[b].push(t));
    if (!model.recurrent) return (await model.run(makeBatch(seqs, V, model.padId), { logits: 'last' })).logits!;
    const feed = step === 0 ? seqs : last.map((t) => [t]);
    const res = await model.run(makeBatch(feed, V, model.padId), { logits: 'last', state, returnState: true });
    state = res.state;
    return res.logits!;
  };
}
