/**
 * The paper's LRE estimator (evandez/relations JacobianIclMeanEstimator):
 * for each of n training samples, the few-shot prompt with the OTHER training
 * samples as examples; its first-order approximation (J_i, b_i) at h = the
 * subject's last token of layer ℓ and z = the last token of the z stream;
 * then J = mean J_i and b = mean b_i. One taped backward per training prompt
 * serves every layer asked for.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import type { RelationSample } from '../../data/relations';
import { encodePrompts, EncodedPrompt } from './encode';
import { firstOrderApproxes } from './jacobian';
import { LinearRelation } from './operator';
import { makeIclPrompt, subjectPrompt } from './prompts';
import { hStream, LreLayer, zStream } from './sites';

export interface EstimateOptions {
  /** Relation id, kept on the LRE for display. */
  relation?: string;
  /** Rows per backward pass (default: D for Mamba, 64 for GPT-NeoX). */
  chunk?: number;
  /** Called after each training prompt's Jacobians. */
  onProgress?: (done: number, total: number) => void;
}

/** The training prompts: each subject's prompt with the other training samples as examples. */
export function trainingPrompts(model: Model, template: string, train: RelationSample[]) {
  return train.map((s) => subjectPrompt(model, makeIclPrompt(template, s.subject, train), s.subject));
}

/** LREs of one relation at several layers from the same training samples. */
export async function estimateLres(model: Model, template: string, train: RelationSample[], layers: LreLayer[], opts: EstimateOptions = {}): Promise<Map<LreLayer, LinearRelation>> {
  if (!train.length) throw new FactlensError('estimateLres: give at least one training sample');
  if (!layers.length) throw new FactlensError('estimateLres: give at least one layer');
  const encoded = await encodePrompts(model, trainingPrompts(model, template, train));
  return estimateFromEncoded(model, encoded, layers, { ...opts, template, trainSubjects: train.map((s) => s.subject) });
}

/** As estimateLres, from training prompts already encoded. */
export async function estimateFromEncoded(
  model: Model,
  encoded: EncodedPrompt[],
  layers: LreLayer[],
  opts: EstimateOptions & { template?: string; trainSubjects?: string[] } = {},
): Promise<Map<LreLayer, LinearRelation>> {
  const D = model.config.dModel;
  const e = zStream(model);
  const streams = layers.map((l) => hStream(model, l));
  const sumJ = new Map<number, Float64Array>();
  const sumB = new Map<number, Float64Array>();
  for (const k of new Set(streams)) {
    sumJ.set(k, new Float64Array(D * D));
    sumB.set(k, new Float64Array(D));
  }
  for (let i = 0; i < encoded.length; i++) {
    const approx = await firstOrderApproxes(model, encoded[i], [...sumJ.keys()], e, { chunk: opts.chunk });
    for (const [k, a] of approx) {
      const J = sumJ.get(k)!;
      const b = sumB.get(k)!;
      for (let j = 0; j < J.length; j++) J[j] += a.J[j];
      for (let j = 0; j < D; j++) b[j] += a.b[j];
    }
    opts.onProgress?.(i + 1, encoded.length);
  }
  const n = encoded.length;
  const out = new Map<LreLayer, LinearRelation>();
  layers.forEach((layer, li) => {
    const k = streams[li];
    const J = Float32Array.from(sumJ.get(k)!, (v) => v / n);
    const b = Float32Array.from(sumB.get(k)!, (v) => v / n);
    out.set(layer, new LinearRelation(J, b, {
      relation: opts.relation, template: opts.template, layer, hStream: k, zStream: e, trainSubjects: opts.trainSubjects,
    }));
  });
  return out;
}

/** The LRE of one relation at one layer. */
export async function estimateLre(model: Model, template: string, train: RelationSample[], layer: LreLayer, opts: EstimateOptions = {}): Promise<LinearRelation> {
  return (await estimateLres(model, template, train, [layer], opts)).get(layer)!;
}
