/**
 * The hook vocabulary: canonical names per architecture, their shapes and
 * meaning, and aliases from romba, TransformerLens / MambaLens, Hugging Face
 * module paths and the parity fixtures. Unknown names get suggestions.
 */
import { FactlensError } from '../errors';

export type Arch = 'mamba' | 'gpt_neox';

export interface HookDoc {
  local: string; // name inside layer i (or a model-level name)
  shape: string; // in shape letters
  meaning: string;
  perLayer: boolean;
}

const MAMBA_DOCS: HookDoc[] = [
  { local: 'embed', shape: '[B,T,D]', meaning: 'token embeddings (residual stream entering layer 0)', perLayer: false },
  { local: 'resid_pre', shape: '[B,T,D]', meaning: 'residual stream entering the block, h^{l-1}', perLayer: true },
  { local: 'norm', shape: '[B,T,D]', meaning: 'RMSNorm output: the key of W_a and W_g (in_proj input)', perLayer: true },
  { local: 'mixer.x', shape: '[B,T,E]', meaning: 'a = W_a n, the SSM half of in_proj (romba ssm_after_up_proj)', perLayer: true },
  { local: 'mixer.z', shape: '[B,T,E]', meaning: 'z = W_g n, the gate half of in_proj (romba mlp_after_up_proj)', perLayer: true },
  { local: 'mixer.conv', shape: '[B,T,E]', meaning: 'causal depthwise conv1d output, before SiLU', perLayer: true },
  { local: 'mixer.ssm_in', shape: '[B,T,E]', meaning: 'u = SiLU(conv), the SSM input', perLayer: true },
  { local: 'mixer.dt', shape: '[B,T,E]', meaning: 'Δ = softplus(W_dt δ + b), the step size', perLayer: true },
  { local: 'mixer.B', shape: '[B,T,N]', meaning: 'input matrix B_t', perLayer: true },
  { local: 'mixer.C', shape: '[B,T,N]', meaning: 'output matrix C_t', perLayer: true },
  { local: 'mixer.state', shape: '[B,T,E,N]', meaning: 'SSM state h_t after each token (read-only; patch with statePatches)', perLayer: true },
  { local: 'mixer.ssm_out', shape: '[B,T,E]', meaning: 's = scan output incl. D skip, before gating (paper s_i)', perLayer: true },
  { local: 'mixer.gate', shape: '[B,T,E]', meaning: 'g = SiLU(z) (paper g_i)', perLayer: true },
  { local: 'mixer.out_proj_in', shape: '[B,T,E]', meaning: 's ⊙ g: the key of W_o (out_proj input)', perLayer: true },
  { local: 'mixer.out', shape: '[B,T,D]', meaning: 'o = W_o(s ⊙ g), the block output before the residual add (paper o_i)', perLayer: true },
  { local: 'resid_post', shape: '[B,T,D]', meaning: 'residual stream after the block, h^l', perLayer: true },
  { local: 'norm_f', shape: '[B,P,D]', meaning: 'final RMSNorm output at the read-out positions', perLayer: false },
  { local: 'logits', shape: '[B,P,V]', meaning: 'next-token logits at the read-out positions', perLayer: false },
];

const NEOX_DOCS: HookDoc[] = [
  { local: 'embed', shape: '[B,T,D]', meaning: 'token embeddings (residual stream entering layer 0)', perLayer: false },
  { local: 'resid_pre', shape: '[B,T,D]', meaning: 'residual stream entering the layer', perLayer: true },
  { local: 'ln1', shape: '[B,T,D]', meaning: 'input LayerNorm output (attention input)', perLayer: true },
  { local: 'attn.q', shape: '[B,H,T,Dh]', meaning: 'queries after rotary', perLayer: true },
  { local: 'attn.k', shape: '[B,H,T,Dh]', meaning: 'keys after rotary', perLayer: true },
  { local: 'attn.v', shape: '[B,H,T,Dh]', meaning: 'values', perLayer: true },
  { local: 'attn.scores', shape: '[B,H,T,T]', meaning: 'scaled, masked attention scores before softmax (set to -1e9 to cut an edge)', perLayer: true },
  { local: 'attn.pattern', shape: '[B,H,T,T]', meaning: 'attention probabilities', perLayer: true },
  { local: 'attn.z', shape: '[B,T,D]', meaning: 'attention-weighted values, heads concatenated (dense input)', perLayer: true },
  { local: 'attn.out', shape: '[B,T,D]', meaning: 'attention block output after its dense projection', perLayer: true },
  { local: 'resid_mid', shape: '[B,T,D]', meaning: 'residual after attention (sequential-residual models only)', perLayer: true },
  { local: 'ln2', shape: '[B,T,D]', meaning: 'post-attention LayerNorm output (MLP input)', perLayer: true },
  { local: 'mlp.pre', shape: '[B,T,F]', meaning: 'dense_h_to_4h output, before GELU', perLayer: true },
  { local: 'mlp.key', shape: '[B,T,F]', meaning: 'GELU output: the key of W_down (dense_4h_to_h input)', perLayer: true },
  { local: 'mlp.out', shape: '[B,T,D]', meaning: 'MLP output', perLayer: true },
  { local: 'resid_post', shape: '[B,T,D]', meaning: 'residual stream after the layer', perLayer: true },
  { local: 'final_ln', shape: '[B,P,D]', meaning: 'final LayerNorm output at the read-out positions', perLayer: false },
  { local: 'logits', shape: '[B,P,V]', meaning: 'next-token logits at the read-out positions', perLayer: false },
];

export function hookDocs(arch: Arch, parallelResidual = true): HookDoc[] {
  if (arch === 'mamba') return MAMBA_DOCS;
  return NEOX_DOCS.filter((d) => !(parallelResidual && d.local === 'resid_mid'));
}

/** Per-layer aliases: alias local name → canonical local name. */
const LAYER_ALIASES: Record<Arch, Record<string, string>> = {
  mamba: {
    // romba (MambaBlock_Hook_Points), with or without "mixer."
    ssm_after_up_proj: 'mixer.x', ssm_after_conv1D: 'mixer.conv', ssm_after_silu: 'mixer.ssm_in', ssm_after_ssm: 'mixer.ssm_out',
    mlp_after_up_proj: 'mixer.z', mlp_after_silu: 'mixer.gate', before_down_proj: 'mixer.out_proj_in', after_down_proj: 'mixer.out',
    // MambaLens / TransformerLens
    hook_resid_pre: 'resid_pre', hook_in: 'resid_pre', hook_normalized_input: 'norm', hook_in_proj: 'mixer.x', hook_skip: 'mixer.z',
    hook_conv: 'mixer.conv', hook_ssm_input: 'mixer.ssm_in', hook_delta: 'mixer.dt', hook_B: 'mixer.B', hook_C: 'mixer.C',
    hook_ssm_output: 'mixer.ssm_out', hook_after_skip: 'mixer.out_proj_in', hook_out_proj: 'mixer.out', hook_ssm_out: 'mixer.out',
    hook_resid_post: 'resid_post', hook_out: 'resid_post', hook_mixer_out: 'mixer.out', hook_mixer_in: 'norm',
    // parity fixture keys and HF module paths
    x_in_proj: 'mixer.x', z_in_proj: 'mixer.z', conv_out: 'mixer.conv', ssm_in: 'mixer.ssm_in', dt: 'mixer.dt', B: 'mixer.B', C: 'mixer.C',
    ssm_out: 'mixer.ssm_out', gate: 'mixer.gate', out_proj_in: 'mixer.out_proj_in', mixer_out: 'mixer.out', mixer: 'mixer.out',
    '': 'resid_post',
  },
  gpt_neox: {
    hook_resid_pre: 'resid_pre', hook_in: 'resid_pre', 'ln1.hook_normalized': 'ln1', 'attn.hook_q': 'attn.q', 'attn.hook_k': 'attn.k',
    'attn.hook_v': 'attn.v', 'attn.hook_attn_scores': 'attn.scores', 'attn.hook_pattern': 'attn.pattern', 'attn.hook_z': 'attn.z',
    hook_attn_out: 'attn.out', hook_resid_mid: 'resid_mid', 'ln2.hook_normalized': 'ln2', 'mlp.hook_pre': 'mlp.pre',
    'mlp.hook_post': 'mlp.key', hook_mlp_out: 'mlp.out', hook_resid_post: 'resid_post', hook_out: 'resid_post',
    attn_out: 'attn.out', mlp_key: 'mlp.key', mlp_out: 'mlp.out', attention: 'attn.out', mlp: 'mlp.out', '': 'resid_post',
  },
};

const GLOBAL_ALIASES: Record<Arch, Record<string, string>> = {
  mamba: { hook_embed: 'embed', embeddings: 'embed', 'ln_final.hook_normalized': 'norm_f', hook_norm: 'norm_f', hook_logits: 'logits' },
  gpt_neox: { hook_embed: 'embed', embed_in: 'embed', 'ln_final.hook_normalized': 'final_ln', final_layer_norm: 'final_ln', hook_logits: 'logits' },
};

/** Every accepted alias spelling of a canonical local hook name (per layer or model-level). */
export function aliasesOf(arch: Arch, local: string): string[] {
  const table = { ...LAYER_ALIASES[arch], ...GLOBAL_ALIASES[arch] };
  return Object.keys(table).filter((a) => a !== '' && table[a] === local);
}

export interface HookName {
  name: string; // canonical global name
  layer: number | null;
  local: string;
}

/** Resolve any accepted spelling to the canonical hook name, or throw with suggestions. */
export function resolveHook(raw: string, arch: Arch, nLayers: number, parallelResidual = true): HookName {
  const docs = hookDocs(arch, parallelResidual);
  const locals = new Set(docs.map((d) => d.local));
  const stripped = raw.replace(/^(backbone|gpt_neox|model)\./, '');
  const m = /^(?:layers|blocks|h)\.(\d+)(?:\.(.*))?$/.exec(stripped);
  if (m) {
    const layer = Number(m[1]);
    let local = (m[2] ?? '').replace(/^mixer\.(?=(ssm_|mlp_|before_|after_))/, '');
    local = locals.has(local) && docs.find((d) => d.local === local)!.perLayer ? local : LAYER_ALIASES[arch][local] ?? local;
    if (locals.has(local) && docs.find((d) => d.local === local)!.perLayer) {
      if (layer < 0 || layer >= nLayers) throw new FactlensError(`hook "${raw}": layer ${layer} is out of range (model has ${nLayers} layers, 0..${nLayers - 1})`);
      return { name: `layers.${layer}.${local}`, layer, local };
    }
  } else {
    const local = GLOBAL_ALIASES[arch][stripped] ?? stripped;
    if (locals.has(local) && !docs.find((d) => d.local === local)!.perLayer) return { name: local, layer: null, local };
  }
  throw new FactlensError(`unknown hook "${raw}" for ${arch}. Did you mean: ${suggest(raw, allHookNames(arch, nLayers, parallelResidual)).join(', ')}?`);
}

export function allHookNames(arch: Arch, nLayers: number, parallelResidual = true): string[] {
  const out: string[] = [];
  const docs = hookDocs(arch, parallelResidual);
  out.push('embed');
  for (let l = 0; l < nLayers; l++) for (const d of docs) if (d.perLayer) out.push(`layers.${l}.${d.local}`);
  for (const d of docs) if (!d.perLayer && d.local !== 'embed') out.push(d.local);
  return out;
}

function suggest(raw: string, names: string[]): string[] {
  return names
    .map((n) => ({ n, d: editDistance(raw.toLowerCase(), n.toLowerCase()) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((x) => `"${x.n}"`);
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}
