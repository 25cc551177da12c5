/**
 * Text generation: greedy or seeded top-k sampling. Mamba carries its
 * recurrent state from step to step (one token per step); GPT-NeoX reruns the
 * whole prefix each step (no KV cache: prompts here are short).
 * Rows of different lengths are generated in groups of equal length.
 */
import { ssmLayout } from '../models/ssm';
import type { Model, ModelInput } from './model';
import { makeBatch } from './batch';
import { MambaState } from './forward';
import { Tensor } from './tensor';

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
  const random = rng(opts.seed ?? 0);
  const tokens: number[][] = prompts.map(() => []);
  // Group rows by prompt length so each group runs as one unpadded batch.
  const groups = new Map<number, number[]>();
  prompts.forEach((p, i) => groups.set(p.length, [...(groups.get(p.length) ?? []), i]));
  for (const rows of groups.values()) {
    const out = await generateGroup(model, rows.map((r) => prompts[r]), opts, random);
    rows.forEach((r, i) => (tokens[r] = out[i]));
  }
  const texts = model.tokenizer ? tokens.map((t) => model.decode(t)) : tokens.map(() => '');
  return { prompts, tokens, texts };
}

async function generateGroup(model: Model, prompts: number[][], opts: GenerateOptions, random: () => number): Promise<number[][]> {
  const maxNew = opts.maxNewTokens ?? 20;
  const eos = model.config.eosTokenId;
  const stop = opts.stopAtEos ?? true;
  const V = model.config.vocabSize;
  const seqs = prompts.map((p) => [...p]);
  const done = prompts.map(() => false);
  const out: number[][] = prompts.map(() => []);
  let state: MambaState | undefined;
  for (let step = 0; step < maxNew && done.some((d) => !d); step++) {
    let logits: Tensor; // [B,1,V]
    if (ssmLayout(model.config)) {
      const feed = step === 0 ? seqs : seqs.map((s) => [s[s.length - 1]]);
      const res = await model.run(makeBatch(feed, V, model.padId), { logits: 'last', state, returnState: true });
      state = res.state;
      logits = res.logits!;
    } else {
      logits = (await model.run(makeBatch(seqs, V, model.padId), { logits: 'last' })).logits!;
    }
    seqs.forEach((s, b) => {
      const next = pickToken(logits.data.subarray(b * V, (b + 1) * V), opts.topK ?? 0, opts.temperature ?? 1, random);
      s.push(next);
      if (done[b]) return;
      if (stop && next === eos) done[b] = true;
      else out[b].push(next);
    });
  }
  return out;
}
