/**
 * Matmul FLOPs of one forward pass: 2·rows·in·out for every linear layer
 * (including the unembedding at every position), plus attention's QKᵀ and
 * PV (2·B·T·T·D each). The scan, conv, norms and elementwise ops are not
 * matmuls and are not counted.
 */
import type { ModelConfig } from '../src/io';

export function matmulFlops(c: ModelConfig, B: number, T: number): number {
  const rows = B * T;
  const lin = (i: number, o: number) => 2 * rows * i * o;
  let perLayer: number;
  if (c.arch === 'mamba') {
    const { dModel: D, dInner: E, dState: N, dtRank: R } = c;
    perLayer = lin(D, 2 * E) + lin(E, R + 2 * N) + lin(R, E) + lin(E, D);
  } else if (c.arch === 'mamba2') {
    const { dModel: D, dInner: E, nHeads: H, nGroups: G, dState: N } = c;
    perLayer = lin(D, 2 * E + 2 * G * N + H) + lin(E, D); // in_proj [z; x; B; C; dt], out_proj
  } else if (c.arch !== 'gpt_neox') {
    const { dModel: D, dFF: F, nHead: H, nKvHeads: Hkv, headDim: Dh } = c;
    const attention = 2 * (2 * B * T * T * H * Dh); // QKᵀ and PV over all query heads
    const mlp = (c.mlp === 'silu_gated' ? 3 : 2) * lin(D, F); // gate, up, down (GPT-2: fc, proj)
    perLayer = lin(D, (H + 2 * Hkv) * Dh) + lin(H * Dh, D) + mlp + attention;
  } else {
    const { dModel: D, dFF: F } = c;
    const attention = 2 * (2 * B * T * T * D); // QKᵀ and PV over all heads
    perLayer = lin(D, 3 * D) + lin(D, D) + lin(D, F) + lin(F, D) + attention;
  }
  return c.nLayer * perLayer + lin(c.dModel, c.vocabSize);
}
