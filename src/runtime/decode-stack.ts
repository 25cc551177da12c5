/**
 * Every layer and the head as ONE stage, for decoding (decoder.ts): one onnxruntime session call
 * per token for the whole model. Each layer's carried activations (Mamba's conv_state / ssm_state,
 * a transformer's past_k / past_v) become inputs `layers.{l}.{name}`, and what it returns for the
 * next step (the new states, the new keys/values) outputs `layers.{l}.{name}`. Activations every
 * layer reads alike (mask, rotary tables) are shared. The head reads one position per row, picked
 * by `readout` [B,1,T] (one-hot over positions: 1·x plus exact zeros, so the picked row is exact).
 * Hook points are not exposed: a hooked run goes through runModel's per-layer path.
 */
import type { Value } from '../graph/ir';
import type { StageDef } from './stage';
import { Tensor } from './tensor';

/** `carried`: per-layer activation inputs that differ by layer; every other stage output besides resid_post is returned per layer. */
export function decodeStackStage(layer: StageDef, head: StageDef, nLayers: number, carried: string[]): StageDef {
  return {
    key: `${layer.key}|${head.key}|decode${nLayers}|${carried.join(",")}`,
    build(g, io) {
      let resid: Value | null = null; // [B,T,D] between layers
      const shared = new Map<string, Value>(); // acts every layer reads alike
      const sharedAct = (name: string, shape: Value['shape']) => {
        if (!shared.has(name)) shared.set(name, io.act(name, shape));
        return shared.get(name)!;
      };
      for (let l = 0; l < nLayers; l++) {
        layer.build(g, {
          act: (name, shape) => {
            if (name === 'resid_pre' && resid) return resid;
            return carried.includes(name) ? io.act(`layers.${l}.${name}`, shape) : sharedAct(name, shape);
          },
          weight: (name, shape) => io.weight(`layers.${l}.${name}`, shape),
          hook: (_name, v) => v,
          out: (name, v) => {
            if (name === 'resid_post') resid = v;
            else io.out(`layers.${l}.${name}`, v);
          },
          host: (op) => {
            throw new Error(`decodeStackStage: ${layer.key} has a host op (${op.name}); build it without the native scan`);
          },
          options: io.options,
        });
      }
      const last = resid!; // [B,T,D]
      const picked = g.matmul(io.act('readout', ['B', 1, last.shape[1]]), last); // [B,1,D]
      head.build(g, { ...io, act: (name, shape) => (name === 'resid' ? picked : io.act(name, shape)), hook: (_name, v) => v });
    },
  };
}

/** The `readout` input [B,1,T]: one-hot at each row's read-out position. */
export function readoutAt(positions: number[], T: number): Tensor {
  const sel = new Float32Array(positions.length * T); // [B,1,T]
  positions.forEach((p, b) => (sel[b * T + p] = 1));
  return new Tensor(sel, [positions.length, 1, T]);
}
