/**
 * Transformer decoding state (decoder.ts): per layer a key and a value cache [B,Hkv,S,Dh] with
 * S = longest prompt + the tokens still to feed. Cache slots 0..Tmax-1 hold the prompts (right-
 * padded: slots from a row's length on are padding, masked out for good); generated token s of
 * every row goes to slot Tmax+s, at the row's own position length+s for rotary tables and learned
 * positions. The prompts are read in one call on the same session (one masked dummy past slot, so no
 * tensor has a zero-sized axis). Models with sliding-window layers get the mask per layer (a carried
 * input): those layers also hide keys w or more positions behind the query, as the forward does.
 */
import { FactlensError } from '../errors';
import { rotaryTables } from '../models/rotary';
import type { DecodeCarry, DecodeRun } from './decoder';
import { readoutAt } from './decode-stack';
import type { Model } from './model';
import type { StageDef } from './stage';
import { Tensor } from './tensor';
import { makeBatch } from './batch';
import { pastMask, ropeRows } from './kv-past';

const MASKED = -1e9; // the forward's additive mask value

export class KvCarry implements DecodeCarry {
  readonly layerStage: StageDef;
  readonly carried: string[];
  readonly options = { kvCache: true };
  private readonly B: number;
  private readonly Tmax: number;
  private readonly S: number; // cache slots
  private readonly hkv: number;
  private readonly dh: number;
  private readonly rd: number;
  private readonly keys: Tensor[]; // per layer [B,Hkv,S,Dh]
  private readonly values: Tensor[]; // per layer [B,Hkv,S,Dh]
  private readonly stepK: Tensor[]; // per layer [B,Hkv,1,Dh]: one step's new keys
  private readonly stepV: Tensor[]; // per layer [B,Hkv,1,Dh]
  private readonly logits: Tensor; // [B,1,V]
  private readonly rope: { cos: Float32Array; sin: Float32Array }; // [positions,Rd]
  private readonly window?: number; // sliding window w of the layers in `sliding`
  private readonly sliding: Set<number>;
  private filled: number; // cache slots written (prompt slots count as written)

  constructor(
    private readonly model: Model,
    private readonly prompts: number[][],
    maxNewTokens: number,
  ) {
    const c = model.config;
    if (c.arch === 'mamba' || c.arch === 'mamba2') throw new FactlensError(`KvCarry: ${model.name} is an SSM`);
    this.layerStage = model.layerStage;
    this.B = prompts.length;
    this.Tmax = Math.max(...prompts.map((p) => p.length));
    const positions = this.Tmax + Math.max(maxNewTokens - 1, 0); // the last generated token is never fed
    if (positions > c.maxPositions) {
      throw new FactlensError(`generate: maxNewTokens ${maxNewTokens} after a ${this.Tmax}-token prompt needs ${positions} positions; ${model.name} has ${c.maxPositions} (max_position_embeddings)`);
    }
    this.S = positions;
    this.hkv = c.arch === 'gpt_neox' ? c.nHead : c.nKvHeads;
    this.dh = c.headDim;
    this.rd = c.rotaryDims;
    const cache = () => Array.from({ length: model.nLayers }, () => Tensor.zeros([this.B, this.hkv, this.S, this.dh]));
    this.keys = cache();
    this.values = cache();
    const step = () => Array.from({ length: model.nLayers }, () => Tensor.zeros([this.B, this.hkv, 1, this.dh]));
    this.stepK = step();
    this.stepV = step();
    this.logits = Tensor.zeros([this.B, 1, c.vocabSize]);
    this.rope = rotaryTables(c, positions);
    const window = 'slidingWindow' in c ? c.slidingWindow : undefined;
    this.window = window !== undefined && window < positions ? window : undefined; // a window no run reaches is no window
    this.sliding = new Set(this.window !== undefined && 'slidingLayers' in c ? c.slidingLayers : []);
    this.carried = this.window === undefined ? ['past_k', 'past_v'] : ['past_k', 'past_v', 'attn_mask'];
    this.filled = this.Tmax;
  }

  async first(run: DecodeRun): Promise<Tensor> {
    const { B, Tmax: T, hkv, dh } = this;
    const batch = makeBatch(this.prompts, this.model.config.vocabSize, this.model.padId);
    // One masked dummy past slot, then the prompt: a resumed run at offset 0 (kv-past.ts).
    const promptMask = (window?: number) => new Tensor(pastMask(batch.lengths, new Array<number>(B).fill(0), 1, T, window), [B, 1, T, 1 + T]);
    const dummy = Tensor.zeros([B, hkv, 1, dh]); // [B,Hkv,1,Dh]
    const acts: Record<string, Tensor> = {
      resid_pre: this.model.embed(batch), // [B,T,D]
      ...this.masks(promptMask),
      readout: readoutAt(batch.lengths.map((n) => n - 1), T), // [B,1,T]
      ...this.ropeAt(Array.from({ length: B * T }, (_, i) => i % T), T),
    };
    const outs: Record<string, Tensor> = { logits: this.logits };
    const promptK: Tensor[] = [];
    const promptV: Tensor[] = [];
    for (let l = 0; l < this.model.nLayers; l++) {
      acts[`layers.${l}.past_k`] = acts[`layers.${l}.past_v`] = dummy;
      outs[`layers.${l}.k_new`] = promptK[l] = Tensor.zeros([B, hkv, T, dh]);
      outs[`layers.${l}.v_new`] = promptV[l] = Tensor.zeros([B, hkv, T, dh]);
    }
    await run(acts, outs);
    for (let l = 0; l < this.model.nLayers; l++) {
      this.store(promptK[l], this.keys[l], 0);
      this.store(promptV[l], this.values[l], 0);
    }
    return this.logits;
  }

  async next(run: DecodeRun, tokens: number[]): Promise<Tensor> {
    const { B, S } = this;
    const step = this.filled - this.Tmax;
    const positions = this.prompts.map((p) => p.length + step);
    const stepMask = (window?: number) => {
      const mask = new Float32Array(B * (S + 1)).fill(MASKED); // [B,1,1,S+1]: the cache, then this token
      for (let b = 0; b < B; b++) {
        const query = positions[b];
        for (let j = 0; j < this.prompts[b].length; j++) if (inWindow(j, query, window)) mask[b * (S + 1) + j] = 0;
        // Generated slot Tmax+s holds position length+s; the token fed now (position `query`) is the last column.
        for (let j = this.Tmax; j <= this.filled; j++) if (inWindow(j - this.Tmax + this.prompts[b].length, query, window)) mask[b * (S + 1) + (j === this.filled ? S : j)] = 0;
      }
      return new Tensor(mask, [B, 1, 1, S + 1]);
    };
    const acts: Record<string, Tensor> = {
      resid_pre: this.model.embed(makeBatch(tokens.map((t) => [t]), this.model.config.vocabSize, this.model.padId), positions), // [B,1,D]
      ...this.masks(stepMask),
      readout: readoutAt(new Array<number>(B).fill(0), 1), // [B,1,1]
      ...this.ropeAt(positions, 1),
    };
    const outs: Record<string, Tensor> = { logits: this.logits };
    for (let l = 0; l < this.model.nLayers; l++) {
      acts[`layers.${l}.past_k`] = this.keys[l];
      acts[`layers.${l}.past_v`] = this.values[l];
      outs[`layers.${l}.k_new`] = this.stepK[l];
      outs[`layers.${l}.v_new`] = this.stepV[l];
    }
    await run(acts, outs);
    for (let l = 0; l < this.model.nLayers; l++) {
      this.store(this.stepK[l], this.keys[l], this.filled);
      this.store(this.stepV[l], this.values[l], this.filled);
    }
    this.filled++;
    return this.logits;
  }

  /** The attention mask input(s): one shared mask, or one per layer (windowed on sliding layers). */
  private masks(build: (window?: number) => Tensor): Record<string, Tensor> {
    if (this.window === undefined) return { attn_mask: build() };
    const full = build();
    const windowed = build(this.window);
    const perLayer: Record<string, Tensor> = {};
    for (let l = 0; l < this.model.nLayers; l++) perLayer[`layers.${l}.attn_mask`] = this.sliding.has(l) ? windowed : full;
    return perLayer;
  }

  /** Rotary tables [B,1,T,Rd] at the given positions (row-major over B·T); none without rotary. */
  private ropeAt(positions: number[], T: number): Record<string, Tensor> {
    return this.rd ? ropeRows(this.rope, this.rd, positions, this.B, T) : {};
  }

  /** New keys/values [B,Hkv,n,Dh] into cache slots from..from+n-1 of [B,Hkv,S,Dh]. */
  private store(src: Tensor, cache: Tensor, from: number): void {
    const n = src.shape[2];
    const { dh, S } = this;
    for (let bh = 0; bh < this.B * this.hkv; bh++) cache.data.set(src.data.subarray(bh * n * dh, (bh + 1) * n * dh), (bh * S + from) * dh);
  }
}

/** Whether a key at position `key` is visible to a query at `query` (key ≤ query) under a sliding window w (transformers: key > query − w). */
function inWindow(key: number, query: number, window?: number): boolean {
  return window === undefined || key > query - window;
}
