/**
 * What a causal trace restores. Each kind names a hook inside layer l and whether a cell restores
 * that one layer (the residual stream) or a window of layers around it (romba / ROME: 10 layers).
 *
 * Mamba: residual h^l (`layers.l.resid_post`, romba restores the output of layers.{l}), the
 * Conv+SSM output s (`mixer.ssm_out`), the gate g (`mixer.gate`) and the block output o
 * (`mixer.out`). GPT-NeoX/Pythia: residual, MLP output (`mlp.out`) and attention output (`attn.out`).
 */
import { FactlensError } from '../../errors';
import type { Arch } from '../../runtime/hooks';
import { layerWindow } from '../../runtime/interventions';
import type { StateKind } from '../../viz/colors';

export type TraceKind = 'residual' | 'ssm' | 'gate' | 'out' | 'mlp' | 'attn';

export interface KindInfo {
  kind: TraceKind;
  /** Hook inside a layer. */
  local: string;
  /** Restored over a window of layers (true) or a single layer (false). */
  windowed: boolean;
  /** How the paper and romba call it. */
  label: string;
  romba: string;
  /** Colour scale of its heatmaps. */
  viz: StateKind;
}

const MAMBA_KINDS: KindInfo[] = [
    { kind: 'residual', local: 'resid_post', windowed: false, label: 'residual h', romba: 'layers.{l}', viz: 'residual' },
    { kind: 'ssm', local: 'mixer.ssm_out', windowed: true, label: 'Conv+SSM output s', romba: 'ssm_after_ssm', viz: 'ssm' },
    { kind: 'gate', local: 'mixer.gate', windowed: true, label: 'gate g', romba: 'mlp_after_silu', viz: 'gate' },
    { kind: 'out', local: 'mixer.out', windowed: true, label: 'block output o', romba: 'after_down_proj', viz: 'out' },
];

// Mamba-2's block has the same states under the same hook names (s before its gated norm, g, o).
const KINDS: Record<Arch, KindInfo[]> = {
  mamba: MAMBA_KINDS,
  mamba2: MAMBA_KINDS,
  gpt_neox: [
    { kind: 'residual', local: 'resid_post', windowed: false, label: 'residual h', romba: 'gpt_neox.layers.{l}', viz: 'residual' },
    { kind: 'mlp', local: 'mlp.out', windowed: true, label: 'MLP output', romba: 'gpt_neox.layers.{l}.mlp', viz: 'mlp' },
    { kind: 'attn', local: 'attn.out', windowed: true, label: 'attention output', romba: 'gpt_neox.layers.{l}.attention', viz: 'attn' },
  ],
  gpt2: transformerKinds('transformer.h.{l}', 'attn'),
  llama: transformerKinds('model.layers.{l}', 'self_attn'),
  mistral: transformerKinds('model.layers.{l}', 'self_attn'),
  qwen2: transformerKinds('model.layers.{l}', 'self_attn'),
  qwen3: transformerKinds('model.layers.{l}', 'self_attn'),
};

/** GPT-2 and the Llama family: the same kinds as Pythia, named by their Hugging Face module paths. */
function transformerKinds(layer: string, attn: string): KindInfo[] {
  return [
    { kind: 'residual', local: 'resid_post', windowed: false, label: 'residual h', romba: layer, viz: 'residual' },
    { kind: 'mlp', local: 'mlp.out', windowed: true, label: 'MLP output', romba: `${layer}.mlp`, viz: 'mlp' },
    { kind: 'attn', local: 'attn.out', windowed: true, label: 'attention output', romba: `${layer}.${attn}`, viz: 'attn' },
  ];
}

/** The kinds a model architecture supports, in the paper's order. */
export function traceKinds(arch: Arch): TraceKind[] {
  return KINDS[arch].map((k) => k.kind);
}

export function kindInfo(arch: Arch, kind: TraceKind): KindInfo {
  const info = KINDS[arch].find((k) => k.kind === kind);
  if (!info) throw new FactlensError(`causal tracing: kind "${kind}" does not exist for ${arch} models (use ${traceKinds(arch).join(', ')})`);
  return info;
}


/** The paper's window (10 layers) and the depths it was used at. */
export const PAPER_WINDOW = 10;
export const PAPER_LAYERS: Record<Arch, number> = { mamba: 64, gpt_neox: 32, mamba2: 64, gpt2: 32, llama: 32, mistral: 32, qwen2: 32, qwen3: 32 }; // mamba2: mamba2-2.7b's 64 layers

/**
 * The paper's window scaled to a model's depth (10 of Mamba-2.8b's 64 layers, 10 of Pythia-2.8b's
 * 32): 10 on the real checkpoints, 3 on the 16-layer mamba-facts and the 8-layer neox-facts.
 */
export function scaledWindow(arch: Arch, nLayers: number): number {
  return Math.max(1, Math.round((PAPER_WINDOW * nLayers) / PAPER_LAYERS[arch]));
}

/** Layers restored for a cell of `kind` at layer (or window centre) `layer`. */
export function restoredLayers(info: KindInfo, layer: number, window: number, nLayers: number): number[] {
  return info.windowed ? layerWindow(layer, window, nLayers) : [layer];
}
