/**
 * Canonical (prefix-free) weight names and shapes per architecture, and the
 * mapping from the names files actually use to the canonical ones.
 */
import { Mamba2Config, MambaConfig, ModelConfig, NeoxConfig } from './config-types';

export function expectedWeights(cfg: ModelConfig): Map<string, number[]> {
  if (cfg.arch === 'mamba2') return mamba2Weights(cfg);
  return cfg.arch === 'mamba' ? mambaWeights(cfg) : neoxWeights(cfg);
}

/** Name of the input embedding matrix [V, D]. */
export function embeddingName(arch: ModelConfig['arch']): string {
  return arch === 'mamba' || arch === 'mamba2' ? 'embeddings.weight' : 'embed_in.weight';
}

/** Name of a separate output projection [V, D]; unused when embeddings are tied. */
export function unembeddingName(arch: ModelConfig['arch']): string {
  return arch === 'mamba' || arch === 'mamba2' ? 'lm_head.weight' : 'embed_out.weight';
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

function neoxWeights(c: NeoxConfig): Map<string, number[]> {
  const { vocabSize: V, dModel: D, dFF: F } = c;
  const w = new Map<string, number[]>();
  w.set('embed_in.weight', [V, D]);
  for (let i = 0; i < c.nLayer; i++) {
    const p = `layers.${i}.`;
    w.set(`${p}input_layernorm.weight`, [D]);
    w.set(`${p}input_layernorm.bias`, [D]);
    w.set(`${p}post_attention_layernorm.weight`, [D]);
    w.set(`${p}post_attention_layernorm.bias`, [D]);
    w.set(`${p}attention.query_key_value.weight`, [3 * D, D]); // rows per head: [q_h; k_h; v_h]
    w.set(`${p}attention.query_key_value.bias`, [3 * D]);
    w.set(`${p}attention.dense.weight`, [D, D]);
    w.set(`${p}attention.dense.bias`, [D]);
    w.set(`${p}mlp.dense_h_to_4h.weight`, [F, D]);
    w.set(`${p}mlp.dense_h_to_4h.bias`, [F]);
    w.set(`${p}mlp.dense_4h_to_h.weight`, [D, F]);
    w.set(`${p}mlp.dense_4h_to_h.bias`, [D]);
  }
  w.set('final_layer_norm.weight', [D]);
  w.set('final_layer_norm.bias', [D]);
  if (!c.tieEmbeddings) w.set('embed_out.weight', [V, D]);
  return w;
}

/** Buffers older GPT-NeoX checkpoints carry (causal mask, rotary table); recomputed, never loaded. */
const NEOX_BUFFER = /^layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/;

/**
 * File name -> canonical name, or null for a known buffer to ignore.
 * Names we do not recognise pass through (prefix stripped) so validate() can report them.
 */
export function canonicalName(fileName: string, arch: ModelConfig['arch']): string | null {
  if (arch === 'mamba' || arch === 'mamba2') {
    const name = fileName.startsWith('backbone.') ? fileName.slice('backbone.'.length) : fileName;
    return name === 'embedding.weight' ? 'embeddings.weight' : name; // original state-spaces spelling
  }
  const name = fileName.startsWith('gpt_neox.') ? fileName.slice('gpt_neox.'.length) : fileName;
  return NEOX_BUFFER.test(name) ? null : name;
}
