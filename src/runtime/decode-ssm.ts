/**
 * Mamba-1 / Mamba-2 decoding state (decoder.ts): per layer the conv state [B,K-1,C] and the SSM
 * state [B,E,N]. The prompts are read by the ordinary forward (native scan), in groups of equal
 * length, so the first logits and states are exactly today's; every later token runs the whole stack
 * with the ONNX scan for one step. Two sets of state buffers alternate: a session cannot write an
 * output into the array it reads as an input.
 */
import { mambaLayerStage } from '../models/mamba';
import { mamba2LayerStage } from '../models/mamba2';
import { ssmLayout } from '../models/ssm';
import { makeBatch } from './batch';
import type { DecodeCarry, DecodeRun } from './decoder';
import { readoutAt } from './decode-stack';
import type { Model } from './model';
import type { StageDef } from './stage';
import { Tensor } from './tensor';

interface States {
  conv: Tensor[]; // per layer [B,K-1,C]
  ssm: Tensor[]; // per layer [B,E,N]
}

export class SsmCarry implements DecodeCarry {
  readonly layerStage: StageDef;
  readonly carried = ['conv_state', 'ssm_state'];
  readonly options = {};
  private cur: States;
  private spare: States;
  private readonly logits: Tensor; // [B,1,V]
  private readonly readout: Tensor; // [B,1,1] ones

  constructor(
    private readonly model: Model,
    private readonly prompts: number[][],
  ) {
    const c = model.config;
    this.layerStage = c.arch === 'mamba' ? mambaLayerStage(c, false) : mamba2LayerStage(model.mamba2Config, false);
    const { convKernel: K, convWidth: C, dInner: E, dState: N } = ssmLayout(c)!;
    const B = prompts.length;
    const alloc = (): States => ({
      conv: Array.from({ length: model.nLayers }, () => Tensor.zeros([B, K - 1, C])),
      ssm: Array.from({ length: model.nLayers }, () => Tensor.zeros([B, E, N])),
    });
    this.cur = alloc();
    this.spare = alloc();
    this.logits = Tensor.zeros([B, 1, c.vocabSize]);
    this.readout = readoutAt(new Array<number>(B).fill(0), 1);
  }

  async first(): Promise<Tensor> {
    const groups = new Map<number, number[]>(); // prompt length -> rows
    this.prompts.forEach((p, b) => groups.set(p.length, [...(groups.get(p.length) ?? []), b]));
    for (const rows of groups.values()) {
      const batch = makeBatch(rows.map((r) => this.prompts[r]), this.model.config.vocabSize, this.model.padId);
      const res = await this.model.run(batch, { logits: 'last', returnState: true });
      rows.forEach((r, i) => {
        copyRow(res.logits!, i, this.logits, r);
        for (let l = 0; l < this.model.nLayers; l++) {
          copyRow(res.state!.conv[l], i, this.cur.conv[l], r);
          copyRow(res.state!.ssm[l], i, this.cur.ssm[l], r);
        }
      });
    }
    return this.logits;
  }

  async next(run: DecodeRun, tokens: number[]): Promise<Tensor> {
    const acts: Record<string, Tensor> = { resid_pre: this.model.embed(this.model.batch(tokens.map((t) => [t]))), readout: this.readout }; // [B,1,D]
    const outs: Record<string, Tensor> = { logits: this.logits };
    for (let l = 0; l < this.model.nLayers; l++) {
      acts[`layers.${l}.conv_state`] = this.cur.conv[l];
      acts[`layers.${l}.ssm_state`] = this.cur.ssm[l];
      outs[`layers.${l}.conv_state`] = this.spare.conv[l];
      outs[`layers.${l}.ssm_state`] = this.spare.ssm[l];
    }
    await run(acts, outs);
    [this.cur, this.spare] = [this.spare, this.cur];
    return this.logits;
  }
}

/** Row `from` of `src` into row `to` of `dst` (same trailing shape). */
export function copyRow(src: Tensor, from: number, dst: Tensor, to: number): void {
  const n = src.stride(0);
  dst.data.set(src.data.subarray(from * n, (from + 1) * n), to * n);
}
