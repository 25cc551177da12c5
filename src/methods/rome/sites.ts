/**
 * Which matrix ROME edits (paper-spec §3.1): its weight (and row slice), the hook that carries its
 * input (the key k) and the hook that carries its output (the value v).
 *
 *   Mamba  W_a   layers.l.mixer.in_proj.weight rows 0:E   key layers.l.norm            value layers.l.mixer.x
 *   Mamba  W_g   layers.l.mixer.in_proj.weight rows E:2E  key layers.l.norm            value layers.l.mixer.z
 *   Mamba  W_o   layers.l.mixer.out_proj.weight           key layers.l.mixer.out_proj_in  value layers.l.mixer.out
 *   NeoX   W_down layers.l.mlp.dense_4h_to_h.weight (+bias) key layers.l.mlp.key       value layers.l.mlp.out
 *   GPT-2  W_down layers.l.mlp.c_proj.weight (+bias; Conv1D, read as [out,in]); Llama family layers.l.mlp.down_proj.weight
 */
import { isSsmConfig } from '../../models/ssm';
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import type { Arch } from '../../runtime/hooks';

export type EditMatrix = 'W_a' | 'W_g' | 'W_o' | 'W_down';

export interface EditSite {
  layer: number;
  matrix: EditMatrix;
  /** Canonical weight name, PyTorch layout [out,in]. */
  weight: string;
  /** Rows [from,to) of the weight that this matrix is (in_proj holds W_a and W_g). */
  rows: [number, number];
  /** Hook whose activation is the matrix input k (one vector per token). */
  keyHook: string;
  /** Hook whose activation is the matrix output v (exactly the edited rows). */
  valueHook: string;
  keyDim: number;
  valueDim: number;
  /** Bias added to the output (then v = W k + b), if any. */
  bias?: string;
}

/** The editable matrices of each architecture, in the paper's plotting order. */
export const EDIT_MATRICES: Record<Arch, EditMatrix[]> = { mamba: ['W_a', 'W_g', 'W_o'], gpt_neox: ['W_down'], mamba2: ['W_a', 'W_g', 'W_o'], gpt2: ['W_down'], llama: ['W_down'], mistral: ['W_down'], qwen2: ['W_down'], qwen3: ['W_down'] };

/** romba's default module: Mamba out_proj, Pythia dense_4h_to_h. */
export const DEFAULT_MATRIX: Record<Arch, EditMatrix> = { mamba: 'W_o', gpt_neox: 'W_down', mamba2: 'W_o', gpt2: 'W_down', llama: 'W_down', mistral: 'W_down', qwen2: 'W_down', qwen3: 'W_down' };

/** The paper's colours: W_a red, W_g green, W_o blue, Pythia W_down dark teal. */
export const MATRIX_COLORS: Record<EditMatrix, string> = { W_a: '#d62728', W_g: '#2ca02c', W_o: '#1f77b4', W_down: '#00606b' };

const ALIASES: Record<string, EditMatrix> = {
  w_a: 'W_a', wa: 'W_a', ssm: 'W_a', 'in_proj.x': 'W_a', in_proj_x: 'W_a',
  w_g: 'W_g', wg: 'W_g', non_ssm: 'W_g', 'in_proj.z': 'W_g', in_proj_z: 'W_g',
  w_o: 'W_o', wo: 'W_o', out_proj: 'W_o',
  w_down: 'W_down', wdown: 'W_down', dense_4h_to_h: 'W_down', mlp: 'W_down',
};

export function parseMatrix(name: string): EditMatrix {
  const m = ALIASES[name.toLowerCase()];
  if (!m) throw new FactlensError(`unknown ROME matrix "${name}": use W_a, W_g or W_o (Mamba) or W_down (GPT-NeoX)`);
  return m;
}

/** The edit site for a layer and matrix (default: the architecture's default matrix). */
export function editSite(model: Model, layer: number, matrix?: EditMatrix | string): EditSite {
  const m = matrix === undefined ? DEFAULT_MATRIX[model.arch] : parseMatrix(matrix);
  const L = model.nLayers;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) {
    throw new FactlensError(`ROME layer ${layer} is out of range: ${model.name} has layers 0..${L - 1}`);
  }
  if (!EDIT_MATRICES[model.arch].includes(m)) {
    throw new FactlensError(`${m} is not a matrix of ${model.arch} models: ${model.name} can edit ${EDIT_MATRICES[model.arch].join(', ')}`);
  }
  const p = `layers.${layer}.`;
  const mlp = model.mlpDown;
  if (mlp === null) {
    if (!isSsmConfig(model.config)) throw new FactlensError(`${model.name} (${model.arch}) has neither an MLP down projection nor an SSM mixer`);
    const { dModel: D, dInner: E } = model.config;
    if (m === 'W_o') return { layer, matrix: m, weight: `${p}mixer.out_proj.weight`, rows: [0, D], keyHook: `${p}mixer.out_proj_in`, valueHook: `${p}mixer.out`, keyDim: E, valueDim: D, bias: optional(model, `${p}mixer.out_proj.bias`) };
    const x = m === 'W_a'; // in_proj's x part (W_a) or z part (W_g), wherever the architecture puts its rows
    return { layer, matrix: m, weight: `${p}mixer.in_proj.weight`, rows: inProjRows(model.config, x ? 'x' : 'z'), keyHook: `${p}norm`, valueHook: `${p}mixer.${x ? 'x' : 'z'}`, keyDim: D, valueDim: E };
  }
  const { dModel: D } = model.config;
  return { layer, matrix: m, weight: `${p}${mlp.module}.weight`, rows: [0, D], keyHook: `${p}mlp.key`, valueHook: `${p}mlp.out`, keyDim: mlp.dFF, valueDim: D, bias: optional(model, `${p}${mlp.module}.bias`) };
}

/** Rows of in_proj holding x or z: Mamba-1 stacks [x; z], Mamba-2 [z; x; B; C; dt]. */
function inProjRows(c: { arch: Arch; dInner: number }, part: 'x' | 'z'): [number, number] {
  const E = c.dInner;
  const first = (c.arch === 'mamba') === (part === 'x');
  return first ? [0, E] : [E, 2 * E];
}

function optional(model: Model, name: string): string | undefined {
  return model.weightNames().includes(name) ? name : undefined;
}

/** A short label such as "W_o@L5". */
export const siteLabel = (s: EditSite) => `${s.matrix}@L${s.layer}`;
