/**
 * Whole-stack decoding: the prompts of a batch are read once, then every further token of every row
 * runs the whole model (all layers and the head) as one onnxruntime session call (decode-stack.ts).
 * What a row carries from token to token (Mamba's conv and SSM states, a transformer's keys and
 * values) lives in buffers allocated once per batch and is fed to and written by the session in
 * place (preallocated outputs); the weights are wrapped for onnxruntime once. Rows are exact on
 * their own: Mamba rows never mix, and a transformer row's attention masks out other rows' padding.
 *
 * No hooks here: `generate` takes none, and the step API (`model.run` with `state`/`returnState`)
 * keeps running layer by layer with hooks.
 */
import type * as ort from 'onnxruntime-node';
import { isSsmConfig } from '../models/ssm';
import { Compiled, toOrt } from '../graph/session';
import { compileSegment, StageDef, StageOptions } from './stage';
import { decodeStackStage } from './decode-stack';
import { Tensor } from './tensor';
import type { Model } from './model';
import { SsmCarry } from './decode-ssm';
import { KvCarry } from './decode-kv';

/** One run of the decode session: activation inputs and the preallocated tensors its outputs are written into (by stage name). */
export type DecodeRun = (acts: Record<string, Tensor>, outs: Record<string, Tensor>) => Promise<void>;

/** What a family of models carries between tokens, and how it feeds the decode session. */
export interface DecodeCarry {
  /** The layer graph (without host ops) and its per-layer carried inputs. */
  readonly layerStage: StageDef;
  readonly carried: string[];
  readonly options: StageOptions;
  /** Read the prompts; logits [B,1,V] after each row's last prompt token. */
  first(run: DecodeRun): Promise<Tensor>;
  /** Feed one token per row; logits [B,1,V] (the same buffer each step: read it before the next call). */
  next(run: DecodeRun, tokens: number[]): Promise<Tensor>;
}

export class Decoder {
  private constructor(
    private readonly compiled: Compiled,
    private readonly weights: Record<string, ort.Tensor>,
    private readonly carry: DecodeCarry,
  ) {}

  /** A decoder for these prompts that will feed at most `maxNewTokens - 1` further tokens per row. */
  static async open(model: Model, prompts: number[][], maxNewTokens: number): Promise<Decoder> {
    const carry: DecodeCarry = isSsmConfig(model.config) ? new SsmCarry(model, prompts) : new KvCarry(model, prompts, maxNewTokens);
    const def = decodeStackStage(carry.layerStage, model.headStage, model.nLayers, carry.carried);
    const { compiled } = await compileSegment(def, { provided: [], emitHooks: [], emitOuts: 'all', options: carry.options });
    const weights: Record<string, ort.Tensor> = {};
    for (const v of compiled!.inputs) if (v.name.startsWith('w:')) weights[v.name] = toOrt(model.weight(v.name.slice(2)));
    return new Decoder(compiled!, weights, carry);
  }

  first(): Promise<Tensor> {
    return this.carry.first(this.run);
  }

  next(tokens: number[]): Promise<Tensor> {
    return this.carry.next(this.run, tokens);
  }

  private readonly run: DecodeRun = async (acts, outs) => {
    const feeds: Record<string, ort.Tensor> = { ...this.weights };
    for (const v of this.compiled.inputs) {
      if (!v.name.startsWith('act:')) continue;
      const t = acts[v.name.slice(4)];
      if (!t) throw new Error(`decoder: no activation "${v.name.slice(4)}" for the decode session`);
      feeds[v.name] = toOrt(t);
    }
    const fetches: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(outs)) fetches[`out:${name}`] = toOrt(t);
    await this.compiled.runInto(feeds, fetches);
  };
}
