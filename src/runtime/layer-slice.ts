/**
 * Run part of one layer on tensors of your choosing: feed some hook points,
 * read others. E.g. Mamba's Conv+SSM path alone: provide `mixer.x` (a) and
 * read `mixer.ssm_out` (s), with zero initial conv/SSM state. Used by exact
 * path blocking, which recomputes a target token's s from an edited a.
 */
import { FactlensError } from '../errors';
import { compileSegment, hookOrder, hookOutput } from './stage';
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
  const first = provided[names[0]];
  const B = first.shape[0];
  const order = hookOrder(model.layerStage);
  for (const n of [...names, ...emit]) if (!order.includes(n)) throw new FactlensError(`runLayerSlice: "${n}" is not a hook point of a ${model.arch} layer (${order.join(', ')})`);
  const compiled = await compileSegment(model.layerStage, { provided: names, emitHooks: emit, emitOuts: [], options: {} });
  const defaults = defaultActs(model, B);
  const feeds: Record<string, Tensor> = {};
  for (const v of compiled.inputs) {
    const [kind, local] = [v.name.slice(0, v.name.indexOf(':')), v.name.slice(v.name.indexOf(':') + 1)];
    if (kind === 'hook') feeds[v.name] = provided[local];
    else if (kind === 'w') feeds[v.name] = model.weight(`layers.${layer}.${local}`);
    else {
      const t = acts[local] ?? defaults[local];
      if (!t) throw new FactlensError(`runLayerSlice: the slice needs activation "${local}"; pass it in acts`);
      feeds[v.name] = t;
    }
  }
  const out = await compiled.run(feeds);
  const result: Record<string, Tensor> = {};
  for (const e of emit) result[e] = out[hookOutput(e)];
  return result;
}

function defaultActs(model: Model, B: number): Record<string, Tensor> {
  if (model.arch !== 'mamba') return {};
  const { dInner: E, dState: N, convKernel: K } = model.mambaConfig;
  return { conv_state: Tensor.zeros([B, K - 1, E]), ssm_state: Tensor.zeros([B, E, N]) };
}
