/**
 * The causal depthwise conv1d of Mamba's mixers (Mamba-1 over x, Mamba-2 over x, B and C together),
 * written as K shifted multiply-adds so that autodiff covers it and a carried conv state resumes it.
 */
import { Value } from '../graph/ir';
import { StageIO } from '../runtime/stage';
import type { Graph } from '../graph/ir';

export interface CausalConv {
  out: Value; // [B,T,C] before the activation
  nextState: Value; // [B,K-1,C] the last K-1 inputs, for the next chunk
}

/** conv over [previous K-1 inputs (the `conv_state` activation) ; x]; zeros at the start of a sequence. */
export function causalConv(g: Graph, io: StageIO, x: Value, channels: number, K: number, bias: boolean): CausalConv {
  const convState = io.act('conv_state', ['B', K - 1, channels]); // [B,K-1,C]
  const xe = g.concat([convState, x], 1); // [B,K-1+T,C]
  const w = g.transpose(g.reshape(io.weight('mixer.conv1d.weight', [channels, 1, K]), [channels, K]), [1, 0]); // [K,C]
  let out = bias ? io.weight('mixer.conv1d.bias', [channels]) : g.scalar(0); // [C]
  for (let k = 0; k < K; k++) {
    const tap = g.slice(w, 0, k, k + 1); // [1,C]
    const shifted = g.slice(xe, 1, k, k === K - 1 ? Infinity : k - (K - 1), 'T'); // [B,T,C]: x_{t-(K-1)+k}
    out = g.add(out, g.mul(shifted, tap)); // [B,T,C]
  }
  return { out, nextState: g.slice(xe, 1, -(K - 1), Infinity, K - 1) }; // [B,T,C], [B,K-1,C]
}
