/**
 * Resuming a Mamba run mid-sequence: the recurrent state entering position t
 * of layer l is fully described by the last K−1 conv inputs (mixer.x at
 * t−K+1..t−1, zeros before the start) and the SSM state after token t−1.
 * Both can be read from a cached run, so a patched run that changes nothing
 * before (layer l, position t) can start there.
 */
import { FactlensError } from '../errors';
import { ssmLayout, SsmLayout } from '../models/ssm';
import { ActivationCache } from './cache';
import type { Model } from './model';
import { Tensor } from './tensor';
import type { MambaState } from './forward';

/** Cache names a run must keep so that mambaStateAt can resume it at any layer and position. */
export function resumeCacheNames(model: Model): string[] {
  const names: string[] = [];
  const convInput = requireSsm(model).convInput;
  for (let l = 0; l < model.nLayers; l++) names.push(`layers.${l}.resid_pre`, `layers.${l}.${convInput}`, `layers.${l}.mixer.state`);
  return names;
}

/**
 * The state entering `position` at `layer`, for one row of a cached run: conv [1,K−1,E], ssm [1,E,N].
 * Both are views into the cache where they can be (no copy: sweeps ask for thousands of them);
 * treat them as read-only.
 */
export function mambaStateAt(model: Model, cache: ActivationCache, layer: number, position: number, row = 0): { conv: Tensor; ssm: Tensor } {
  const { dInner: E0, dState: N, convKernel: K, convWidth: E, convInput } = requireSsm(model); // E: conv channels, E0·N: state size
  if (position <= 0) return { conv: Tensor.zeros([1, K - 1, E]), ssm: Tensor.zeros([1, E0, N]) };
  const x = cache.get(`layers.${layer}.${convInput}`); // [B,T,E]
  const states = cache.get(`layers.${layer}.mixer.state`); // [B,T,E0,N] (Mamba-2: [B,T,H,P,N], the same order)
  const T = x.shape[1];
  if (position > T) throw new FactlensError(`mambaStateAt: position ${position} is beyond the cached run (${T} tokens)`);
  const ssm = new Tensor(states.data.subarray((row * T + position - 1) * E0 * N, (row * T + position) * E0 * N), [1, E0, N]); // [1,E0,N]
  const first = position - (K - 1); // the conv window's first input; before the sequence start it is zero
  if (first >= 0) return { conv: new Tensor(x.data.subarray((row * T + first) * E, (row * T + position) * E), [1, K - 1, E]), ssm };
  const conv = Tensor.zeros([1, K - 1, E]); // [1,K-1,E]
  conv.data.set(x.data.subarray(row * T * E, (row * T + position) * E), -first * E);
  return { conv, ssm };
}

function requireSsm(model: Model): SsmLayout {
  const ssm = ssmLayout(model.config);
  if (!ssm) throw new FactlensError(`${model.name} is a ${model.arch} model: only state-space models (Mamba, Mamba-2) have a recurrent state to resume`);
  return ssm;
}

/**
 * Per-row states stacked into one batch state for layers from..L−1: conv [B,K−1,E] and ssm [B,E,N]
 * from `stateAt(layer, row)` for rows 0..B−1 (e.g. mambaStateAt of each row's start position).
 */
export function stackStates(B: number, from: number, L: number, stateAt: (layer: number, row: number) => { conv: Tensor; ssm: Tensor }): MambaState {
  const state: MambaState = { conv: [], ssm: [] };
  for (let l = from; l < L; l++) {
    const parts = Array.from({ length: B }, (_, b) => stateAt(l, b));
    state.conv[l] = stackRows(parts.map((p) => p.conv)); // [B,K-1,E]
    state.ssm[l] = stackRows(parts.map((p) => p.ssm)); // [B,E,N]
  }
  return state;
}

/** [1,...] tensors stacked along the first axis: [B,...]. */
function stackRows(ts: Tensor[]): Tensor {
  const out = new Float32Array(ts.length * ts[0].size);
  ts.forEach((t, b) => out.set(t.data, b * t.size));
  return new Tensor(out, [ts.length, ...ts[0].shape.slice(1)]);
}
