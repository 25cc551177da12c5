/**
 * Exact path blocking in Mamba: keep chosen source tokens out of a target token's Conv+SSM output.
 *
 * Definition (mode 'exact', the default). At a blocked layer ℓ, for target t and source set Q, the
 * Conv+SSM output s_t (hook mixer.ssm_out) is replaced by s′_t = F_t(a′), where F_t is the layer's
 * Conv+SSM map at position t (causal conv1d → SiLU → x_proj/dt_proj/softplus → selective scan → D skip,
 * from a zero initial state) and a′_j = a_j for j ∉ Q, a′_q = 0 for q ∈ Q (a = mixer.x = W_a n). Because
 * the conv is linear in a, zeroing a_q is the same as leaving the a_q terms out of every conv sum
 * c_j = b + Σ_k w_k a_{j−K+1+k} that feeds u_j (j ≤ t); so u_j, Δ_j, B_j, C_j, every decay and input
 * term of the scan sum, C_t and the D skip of t all see no a_q. Nothing else changes: the s of every
 * other position, the gate g_t = SiLU(z_t) (which reads only token t), the residual stream, the other
 * layers. In the Mamba block the Conv+SSM path is the only place where positions mix, so this removes
 * exactly the edges q → t of layer ℓ, like Geva et al.'s attention knockout removes attention edges.
 *
 * Why slot q's scan term stays in: after blocking, the term j = q of the scan sum is driven by
 * u′_q = SiLU(b + Σ_{k<K−1} w_k a_{q−K+1+k}), the conv of the K−1 tokens before q (and the bias). It
 * carries information of other tokens, not of q; dropping it would also cut paths from non-source
 * tokens (e.g. with Q = the relation tokens, the conv of the first relation token still reads the
 * subject's last tokens: dropping its slot would block subject information too). So the default
 * removes exactly a_q's contribution and nothing else. Two other modes are offered for comparison:
 *  - 'exact+slots': additionally drop the scan input terms of the source slots (B̄_q u′_q := 0, decays
 *    kept), i.e. slot q writes nothing into the state. Blocking all earlier tokens at every layer then
 *    makes the target's output equal to running its token alone.
 *  - 'retention': drop only the scan terms r_{q→t} = (Π_{k=q+1..t} Ā_k ⊙ B̄_q u_q)·C_t and keep a_q in
 *    the conv: romba's failed `selective_scan_with_mask` (paper-spec §5.2), which leaks a_q into
 *    u_{q+1..q+K−1} through the conv.
 *
 * Implementation: a hook on mixer.x remembers a (after any earlier hooks on it); a hook on
 * mixer.ssm_out builds one row a′ per (batch row, block), runs the layer's Conv+SSM slice on them
 * (runLayerSlice, zero initial state; causality makes the positions after t irrelevant) and writes
 * s′_t into (row, t) for each target t. test/unit/information-flow-blocking.test.ts checks it against the
 * slow oracle in reference.ts.
 *
 * The slice starts from a zero state at position 0, so blocking needs whole sequences: it cannot be
 * combined with a run's `state` (continuing from a recurrent state) or `statePatches` (time chunks).
 *
 * Mamba-2: the same definition with a replaced by the per-token inputs through which a token reaches
 * other positions (ssmLayout's mixingInputs): the conv input [x; B; C] and dt_in, which in Mamba-2 is not
 * computed from the conv and so reaches later positions through the decays exp(Δ_q A). Both are zeroed at
 * the sources (Δ_q = softplus(dt_bias)); z and the gated norm read token t only.
 */
import { FactlensError } from '../../errors';
import type { HookFn } from '../../runtime/forward';
import type { Batch } from '../../runtime/batch';
import type { Model } from '../../runtime/model';
import { runLayerSlice } from '../../runtime/layer-slice';
import { ssmLayout } from '../../models/ssm';
import { Tensor } from '../../runtime/tensor';
import type { BlockMode } from './reference';

export type { BlockMode } from './reference';

export interface PathBlock {
  /** Layers whose Conv+SSM path is blocked. */
  layers: number[];
  /** Target positions t, or 'last' for each row's last real token. */
  targets: number[] | 'last';
  /** Source positions q kept out of each target's Conv+SSM output (may include t itself). */
  sources: number[];
  /** Batch rows this applies to (default: all). */
  rows?: number[];
  /** What is removed (default 'exact'; see the file comment). */
  mode?: BlockMode;
}

const MODES: BlockMode[] = ['exact', 'exact+slots', 'retention'];

interface Job {
  row: number;
  targets: number[];
  sources: number[];
}

/** Hooks that apply the blocks; pass them to model.run (after any hooks that should edit a first). */
export function pathBlockingHooks(model: Model, blocks: PathBlock[]): Array<[string, HookFn]> {
  const ssm = ssmLayout(model.config);
  if (!ssm) throw new FactlensError(`path blocking works on Mamba models; ${model.name} is ${model.arch} (use attentionKnockoutEdits for attention models)`);
  const inputs = ssm.mixingInputs;
  const byLayer = new Map<number, PathBlock[]>();
  for (const b of blocks) {
    if (b.mode && !MODES.includes(b.mode)) throw new FactlensError(`path block: unknown mode "${b.mode}" (use ${MODES.join(', ')})`);
    if (!b.layers.length) throw new FactlensError('path block: give at least one layer');
    for (const l of b.layers) {
      if (!Number.isInteger(l) || l < 0 || l >= model.nLayers) throw new FactlensError(`path block: layer ${l} is out of range 0..${model.nLayers - 1}`);
      byLayer.set(l, [...(byLayer.get(l) ?? []), b]);
    }
  }
  const hooks: Array<[string, HookFn]> = [];
  for (const [layer, list] of [...byLayer].sort((x, y) => x[0] - y[0])) {
    const seen = new WeakMap<Batch, Record<string, Tensor>>(); // a (Mamba-2: conv_in, dt_in) of this layer, per run
    for (const name of inputs) hooks.push([`layers.${layer}.${name}`, (a, ctx) => void seen.set(ctx.batch, { ...seen.get(ctx.batch), [name]: a })]);
    hooks.push([`layers.${layer}.mixer.ssm_out`, async (s, ctx) => {
      const a = seen.get(ctx.batch);
      const missing = inputs.find((n) => !a?.[n]);
      if (missing) throw new FactlensError(`path block at layer ${layer}: ${missing} was not seen before mixer.ssm_out`);
      if (a![inputs[0]].shape[1] !== ctx.batch.T) throw new FactlensError('path blocking needs whole sequences from position 0; it cannot be combined with statePatches');
      seen.delete(ctx.batch);
      return blockLayer(model, layer, list, a!, s, ctx.batch);
    }]);
  }
  return hooks;
}

async function blockLayer(model: Model, layer: number, blocks: PathBlock[], a: Record<string, Tensor>, s: Tensor, batch: Batch): Promise<Tensor> {
  const [B, T, E] = s.shape;
  const jobs = new Map<BlockMode, Job[]>();
  const claimed = new Set<string>();
  for (const block of blocks) {
    for (const row of block.rows ?? [...Array(B).keys()]) {
      if (!Number.isInteger(row) || row < 0 || row >= B) throw new FactlensError(`path block at layer ${layer}: row ${row} is out of range (batch has ${B} rows)`);
      const len = batch.lengths[row];
      const targets = block.targets === 'last' ? [len - 1] : block.targets;
      for (const t of targets) {
        if (!Number.isInteger(t) || t < 0 || t >= len) throw new FactlensError(`path block at layer ${layer}: target ${t} is out of range for row ${row} (${len} tokens)`);
        const key = `${row}:${t}`;
        if (claimed.has(key)) throw new FactlensError(`path block at layer ${layer}: two blocks target row ${row}, position ${t}; merge their sources into one block`);
        claimed.add(key);
      }
      for (const q of block.sources) if (!Number.isInteger(q) || q < 0 || q >= T) throw new FactlensError(`path block at layer ${layer}: source ${q} is out of range 0..${T - 1}`);
      const mode = block.mode ?? 'exact';
      jobs.set(mode, [...(jobs.get(mode) ?? []), { row, targets, sources: block.sources }]);
    }
  }
  const out = s.clone();
  for (const [mode, list] of jobs) {
    const sPrime = await blockedSsmOut(model, layer, a, list, mode); // [J,T,E]
    list.forEach((job, i) => {
      for (const t of job.targets) out.data.set(sPrime.data.subarray((i * T + t) * E, (i * T + t + 1) * E), (job.row * T + t) * E);
    });
  }
  return out;
}

/** The Conv+SSM output [J,T,E] of one edited copy of the mixing inputs per job. */
async function blockedSsmOut(model: Model, layer: number, a: Record<string, Tensor>, jobs: Job[], mode: BlockMode): Promise<Tensor> {
  const given: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(a)) given[name] = perJob(t, jobs, mode !== 'retention'); // a′_q = 0
  if (mode === 'exact') return (await runLayerSlice(model, layer, given, ['mixer.ssm_out']))['mixer.ssm_out'];
  // Drop the sources' scan input terms: B_q := 0 removes B̄_q u_q = (Δ_q u_q) ⊗ B_q while every decay stays.
  const Bm = (await runLayerSlice(model, layer, given, ['mixer.B']))['mixer.B']; // [J,T,N] (Mamba-2: [J,T,G·N])
  return (await runLayerSlice(model, layer, { ...given, 'mixer.B': perJob(Bm, jobs.map((j, i) => ({ ...j, row: i })), true) }, ['mixer.ssm_out']))['mixer.ssm_out'];
}

/** One copy [J,T,C] of row job.row of t [B,T,C] per job, with the sources' rows zeroed if `zero`. */
function perJob(t: Tensor, jobs: Job[], zero: boolean): Tensor {
  const [, T, C] = t.shape;
  const out = new Float32Array(jobs.length * T * C); // [J,T,C]
  jobs.forEach((job, i) => {
    out.set(t.data.subarray(job.row * T * C, (job.row + 1) * T * C), i * T * C);
    if (zero) for (const q of job.sources) out.fill(0, (i * T + q) * C, (i * T + q + 1) * C);
  });
  return new Tensor(out, [jobs.length, T, C]);
}
