/**
 * What the runtime needs to know about a state-space model's recurrent state, per architecture, so
 * that forward, resume, state patching and generation carry it without asking which SSM it is:
 * the conv state (the last K−1 conv inputs, `convWidth` channels, read from the `convInput` hook)
 * and the scan state [E,N] (Mamba-2's per-head [H,P,N] in the same memory order).
 */
import type { Mamba2Config, MambaConfig, ModelConfig } from '../io/config';

export interface SsmLayout {
  convWidth: number;
  convKernel: number;
  /** Per-layer hook whose value is the conv's input [B,T,convWidth]. */
  convInput: string;
  dInner: number;
  dState: number;
  /**
   * The per-token hook points through which a token reaches other positions of a layer (path blocking
   * zeroes a source's rows of each): Mamba-1 `mixer.x` (Δ, B and C come from the conv output); Mamba-2 the
   * conv input [x; B; C] and its dt part of in_proj, which reaches later positions through the decays.
   */
  mixingInputs: string[];
}

export function isSsmConfig(c: ModelConfig): c is MambaConfig | Mamba2Config {
  return c.arch === 'mamba' || c.arch === 'mamba2';
}

/** The recurrent-state layout of an SSM, or null for a model without one (transformers). */
export function ssmLayout(c: ModelConfig): SsmLayout | null {
  if (!isSsmConfig(c)) return null;
  const { dInner, dState, convKernel } = c;
  if (c.arch === 'mamba') return { convWidth: dInner, convKernel, convInput: 'mixer.x', dInner, dState, mixingInputs: ['mixer.x'] };
  // The conv runs over [x; B; C]; dt_in feeds the scan without the conv.
  return { convWidth: dInner + 2 * c.nGroups * dState, convKernel, convInput: 'mixer.conv_in', dInner, dState, mixingInputs: ['mixer.conv_in', 'mixer.dt_in'] };
}
