/**
 * Run part of one layer on tensors of your choosing: feed some hook points,
 * read others. E.g. Mamba's Conv+SSM path alone: provide `mixer.x` (a) and
 * read `mixer.ssm_out` (s), with zero initial conv/SSM state. Used by exact
 * path blocking, which recomputes a target token's s from an edited a.
 */
import { ssmLayout } from '../models/ssm';
import { FactlensError } from '../errors';
import { runStage } from './run-stage';
import { hookOrder } from './stage';
import type { Model } from './model';
import { Tensor } from './tensor';

export async function runLayerSlice(
  model: Model,
  layer: number,
  provided: Record<string, Tensor>,
  emit: string[],
  acts: Record<string, Tensor> = {},
): Promise<Record<string, Tensor>> {
  if (layer < 0 || layer >= model.nLayers) throw new FactlensError(`runLayerSlice: layer ${layer} is out of range 0..${model.nLayers - 1}`);
  const names = Object.keys(provided);
  if (!names.length) throw new FactlensError('runLayerSlice: provide at least one hook point');
  const order = hookOrder(model.layerStage);
  for (const n of [...names, ...emit]) if (!order.includes(n)) throw new FactlensError(`runLayerSlice: "${n}" is not a hook point of a ${model.arch} layer (${order.join(', ')})`);
  const B = provided[names[0]].shape[0];
  const res = await runStage(
    model.layerStage,
    { ...defaultActs(model, B), ...acts },
    (w) => model.weight(`layers.${layer}.${w}`),
    { reads: new Set(emit), writes: new Map(), options: {}, outs: [], given: new Map(Object.entries(provided)) },
  );
  const result: Record<string, Tensor> = {};
  for (const e of emit) result[e] = res.reads.get(e)!;
  return result;
}

function defaultActs(model: Model, B: number): Record<string, Tensor> {
  const ssm = ssmLayout(model.config);
  if (!ssm) return {};
  const { dInner: E, dState: N, convKernel: K, convWidth } = ssm;
  return { conv_state: Tensor.zeros([B, K - 1, convWidth]), ssm_state: Tensor.zeros([B, E, N]) };
}
