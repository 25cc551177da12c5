/**
 * Canonical (prefix-free) weight names and shapes per architecture, and the
 * mapping from the names files actually use to the canonical ones.
 */
import { Mamba2Config, MambaConfig, ModelConfig } from './config-types';
import { isConv1dWeight, TRANSFORMER_ADAPTERS, transformerCanonicalName, TransformerSpec, transformerSpec } from '../models/transformer-adapters';

export function expectedWeights(cfg: ModelConfig): Map<string, number[]> {
  if (cfg.arch === 'mamba2') return mamba2Weights(cfg);
  if (cfg.arch === 'mamba') return mambaWeights(cfg);
  return transformerWeights(transformerSpec(cfg));
}

/** Name of the input embedding matrix [V, D]. */
export function embeddingName(arch: ModelConfig['arch']): string {
  if (arch === 'mamba' || arch === 'mamba2') return 'embeddings.weight';
  return TRANSFORMER_ADAPTERS[arch].embed;
}

/** Name of a separate output projection [V, D]; unused when embeddings are tied. */
export function unembeddingName(arch: ModelConfig['arch']): string {
  if (arch === 'mamba' || arch === 'mamba2') return 'lm_head.weight';
  return TRANSFORMER_ADAPTERS[arch].head;
}

/** Canonical weights stored transposed on disk ([in,out], GPT-2 Conv1D): read back as [out,in]. */
export function isStoredTransposed(name: string, arch: ModelConfig['arch']): boolean {
  return arch !== 'mamba' && arch !== 'mamba2' && isConv1dWeight(name, TRANSFORMER_ADAPTERS[arch]);
}

function mambaWeights(c: MambaConfig): Map<string, number[]> {
  const { vocabSize: V, dModel: D, dInner: E, dState: N, dtRank: R, convKernel: K } = c;
  const w = new Map<string, number[]>();
  w.set('embeddings.weight', [V, D]);
  for (let i = 0; i < c.nLayer; i++) {
    const p = `layers.${i}.`;
    w.set(`${p}norm.weight`, [D]);
    w.set(`${p}mixer.in_proj.weight`, [2 * E, D]); // rows: [x branch; z gate]
    if (c.useBias) w.set(`${p}mixer.in_proj.bias`, [2 * E]);
    w.set(`${p}mixer.conv1d.weight`, [E, 1, K]); // depthwise
    if (c.useConvBias) w.set(`${p}mixer.conv1d.bias`, [E]);
    w.set(`${p}mixer.x_proj.weight`, [R + 2 * N, E]); // rows: [delta; B; C]
    w.set(`${p}mixer.dt_proj.weight`, [E, R]);
    w.set(`${p}mixer.dt_proj.bias`, [E]);
    w.set(`${p}mixer.A_log`, [E, N]);
    w.set(`${p}mixer.D`, [E]);
    w.set(`${p}mixer.out_proj.weight`, [D, E]);
    if (c.useBias) w.set(`${p}mixer.out_proj.bias`, [D]);
  }
  w.set('norm_f.weight', [D]);
  if (!c.tieEmbeddings) w.set('lm_head.weight', [V, D]);
  return w;
}

/** Mamba-2: in_proj rows are [z (E); x (E); B (G·N); C (G·N); dt (H)]; the conv runs over x, B and C. */
function mamba2Weights(c: Mamba2Config): Map<string, number[]> {
  const { vocabSize: V, dModel: D, dInner: E, nHeads: H, nGroups: G, dState: N, convKernel: K } = c;
  const convDim = E + 2 * G * N;
  const w = new Map<string, number[]>();
  w.set('embeddings.weight', [V, D]);
  for (let i = 0; i < c.nLayer; i++) {
    const p = `layers.${i}.`;
    w.set(`${p}norm.weight`, [D]);
    w.set(`${p}mixer.in_proj.weight`, [E + convDim + H, D]);
    if (c.useBias) w.set(`${p}mixer.in_proj.bias`, [E + convDim + H]);
    w.set(`${p}mixer.conv1d.weight`, [convDim, 1, K]); // depthwise
    if (c.useConvBias) w.set(`${p}mixer.conv1d.bias`, [convDim]);
    w.set(`${p}mixer.dt_bias`, [H]);
    w.set(`${p}mixer.A_log`, [H]);
    w.set(`${p}mixer.D`, [H]);
    w.set(`${p}mixer.norm.weight`, [E]);
    w.set(`${p}mixer.out_proj.weight`, [D, E]);
    if (c.useBias) w.set(`${p}mixer.out_proj.bias`, [D]);
  }
  w.set('norm_f.weight', [D]);
  if (!c.tieEmbeddings) w.set('lm_head.weight', [V, D]);
  return w;
}

/** GPT-2, GPT-NeoX and the Llama family, from the family's adapter table; matrices in [out,in] layout. */
function transformerWeights(c: TransformerSpec): Map<string, number[]> {
  const a = TRANSFORMER_ADAPTERS[c.arch];
  const { vocabSize: V, dModel: D, dFF: F, nHead: H, nKvHeads: Hkv, headDim: Dh } = c;
  const w = new Map<string, number[]>();
  const linear = (p: string, module: string, out: number, inDim: number, bias: boolean) => {
    w.set(`${p}${module}.weight`, [out, inDim]);
    if (bias) w.set(`${p}${module}.bias`, [out]);
  };
  const norm = (p: string, module: string, dim: number) => {
    w.set(`${p}${module}.weight`, [dim]);
    if (c.norm === 'layernorm') w.set(`${p}${module}.bias`, [dim]);
  };
  w.set(a.embed, [V, D]);
  if (a.posEmbed) w.set(a.posEmbed, [c.maxPositions, D]);
  for (let i = 0; i < c.nLayer; i++) {
    const p = `layers.${i}.`;
    norm(p, a.ln1, D);
    norm(p, a.ln2, D);
    if ('fused' in a.qkv) linear(p, a.qkv.fused, (H + 2 * Hkv) * Dh, D, c.qkvBias); // rows [q; k; v], or per head [q_h; k_h; v_h]
    else {
      linear(p, a.qkv.q, H * Dh, D, c.qkvBias);
      linear(p, a.qkv.k, Hkv * Dh, D, c.qkvBias);
      linear(p, a.qkv.v, Hkv * Dh, D, c.qkvBias);
    }
    if (a.qNorm && a.kNorm) {
      norm(p, a.qNorm, Dh);
      norm(p, a.kNorm, Dh);
    }
    linear(p, a.out, D, H * Dh, c.outBias);
    if (a.gate) linear(p, a.gate, F, D, c.mlpBias);
    linear(p, a.up, F, D, c.mlpBias);
    linear(p, a.down, D, F, c.mlpBias);
  }
  norm('', a.finalNorm, D);
  if (!c.tieEmbeddings) w.set(a.head, [V, D]);
  return w;
}

/**
 * File name -> canonical name, or null for a known buffer to ignore.
 * Names we do not recognise pass through (prefix stripped) so validate() can report them.
 */
export function canonicalName(fileName: string, arch: ModelConfig['arch']): string | null {
  if (arch === 'mamba' || arch === 'mamba2') {
    const name = fileName.startsWith('backbone.') ? fileName.slice('backbone.'.length) : fileName;
    return name === 'embedding.weight' ? 'embeddings.weight' : name; // original state-spaces spelling
  }
  return transformerCanonicalName(fileName, TRANSFORMER_ADAPTERS[arch]);
}
