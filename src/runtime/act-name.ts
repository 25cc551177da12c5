/**
 * getActName: TransformerLens's `utils.get_act_name(kind, layer, layer_type)` for our hook names.
 * It builds a canonical name that every API accepts (`getActName('resid_pre', 3)` →
 * "layers.3.resid_pre"), from TransformerLens's short kinds or our own local names, without a model
 * (so a name is checked against the model only where it is used).
 */
import { FactlensError } from '../errors';
import { hookDocs } from './hooks';

/** TransformerLens kind (and `sub`, its layer_type) → our local name. */
const TL_KINDS: Record<string, string> = {
  embed: 'embed', logits: 'logits', resid_pre: 'resid_pre', resid_mid: 'resid_mid', resid_post: 'resid_post',
  attn_out: 'attn.out', mlp_out: 'mlp.out', q: 'attn.q', k: 'attn.k', v: 'attn.v', z: 'attn.z',
  pattern: 'attn.pattern', attn: 'attn.pattern', attn_scores: 'attn.scores', scores: 'attn.scores',
  pre: 'mlp.pre', post: 'mlp.key', mlp_pre: 'mlp.pre', mlp_post: 'mlp.key', pre_linear: 'mlp.pre_linear',
  // MambaLens's hook names without "hook_"
  in_proj: 'mixer.x', skip: 'mixer.z', ssm_input: 'mixer.ssm_in', delta: 'mixer.dt', ssm_output: 'mixer.ssm_out',
  after_skip: 'mixer.out_proj_in', out_proj: 'mixer.out', normalized_input: 'norm', mixer_out: 'mixer.out',
};

/** `sub` spellings (TransformerLens layer_type) → the prefix of our local names. */
const SUBS: Record<string, string> = { a: 'attn', attn: 'attn', m: 'mlp', mlp: 'mlp', mixer: 'mixer', ln1: 'ln1', ln2: 'ln2' };

const DOCS = [...hookDocs('mamba'), ...hookDocs('gpt_neox', false), ...hookDocs('mamba2'), ...hookDocs('llama')]; // llama: the gated MLP's pre_linear
const LOCALS = new Map(DOCS.map((d) => [d.local, d.perLayer]));

function localOf(kind: string, sub?: string): string | undefined {
  if (sub !== undefined) {
    const prefix = SUBS[sub];
    if (!prefix) throw new FactlensError(`getActName: unknown sub "${sub}" (use one of ${Object.keys(SUBS).join(', ')})`);
    if ((prefix === 'ln1' || prefix === 'ln2') && (kind === 'normalized' || kind === 'hook_normalized')) return prefix;
    const inSub = `${prefix}.${kind === 'post' && prefix === 'mlp' ? 'key' : kind}`;
    return LOCALS.has(inSub) ? inSub : undefined;
  }
  if (LOCALS.has(kind)) return kind;
  const bare = kind.replace(/^hook_/, '');
  if (TL_KINDS[bare]) return TL_KINDS[bare];
  // A Mamba mixer point by its short name (gate, ssm_out, conv, dt, B, C, state, ...).
  return LOCALS.has(`mixer.${bare}`) ? `mixer.${bare}` : undefined;
}

/**
 * The canonical hook name of `kind` at `layer` (omit the layer for model-level points such as
 * "embed" or "logits"). `sub` is TransformerLens's layer_type ('attn'/'a', 'mlp'/'m', 'ln1', 'ln2')
 * or 'mixer' (Mamba): `getActName('z', 3)` is attention's z, `getActName('z', 3, 'mixer')` Mamba's.
 */
export function getActName(kind: string, layer?: number, sub?: string): string {
  const local = localOf(kind, sub);
  if (local === undefined) {
    const known = [...new Set([...Object.keys(TL_KINDS), ...LOCALS.keys()])].join(', ');
    throw new FactlensError(`getActName: unknown kind "${kind}"${sub === undefined ? '' : ` in "${sub}"`}; known kinds: ${known}`);
  }
  if (!LOCALS.get(local)) {
    if (layer !== undefined) throw new FactlensError(`getActName: "${kind}" is a model-level hook point; give no layer`);
    return local;
  }
  if (layer === undefined) throw new FactlensError(`getActName: "${kind}" is a per-layer hook point; give a layer`);
  if (!Number.isInteger(layer) || layer < 0) throw new FactlensError(`getActName: layer must be a non-negative integer, got ${layer}`);
  return `layers.${layer}.${local}`;
}
