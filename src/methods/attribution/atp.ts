/**
 * Attribution patching: every (layer, position) cell of every hook kind estimated from one source
 * forward, one base forward and one backward per batch of prompt pairs (Nanda 2023; Kramár et al.
 * 2024): ĉ(n) = (a_source(n) − a_base(n)) · ∂m/∂a(n) on the base run. See docs/attribution.md.
 *
 * method 'atp' is that linear estimate; 'atp*' recomputes the nonlinearity where the linear step is
 * known to fail — the attention softmax for queries and keys (qk.ts), and the pointwise SiLU/GELU
 * after mixer.z, mixer.conv and mlp.pre (their estimate is the exact change of the activation after
 * the nonlinearity times its gradient); 'ig' averages the gradient over k input interpolations;
 * 'graddrop' is the mean magnitude over layers of AtP with one layer's backward flow dropped
 * (graddrop.ts), a ranking score against cancellation, not a signed estimate.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import type { Tensor } from '../../runtime/tensor';
import { RowEstimate, rowEstimate } from './cells';
import { GradPass, gradPass, metricValues } from './grad-pass';
import { integratedGradPass } from './integrated';
import { AttributionKind, hookOf, selectKinds, selectLayers } from './kinds';
import type { AttributionMetric } from './metrics';
import { checkPairs, Direction, pairBatches, PromptPair } from './pairs';
import { qkRowEstimate } from './qk';
import { slidingWindowAt } from '../../models/attention-mask';
import { GradDropPass, gradDropPass } from './graddrop';

export type AttributionMethod = 'atp' | 'atp*' | 'ig' | 'graddrop';

export interface AttributionOptions {
  /** Hook kinds (hook names without the layer, e.g. "mixer.ssm_out"); default every kind. */
  kinds?: string[];
  /** Layers (default all). */
  layers?: number[];
  direction?: Direction; // default 'denoising'
  method?: AttributionMethod; // default 'atp'
  /** Integrated-gradient steps for method 'ig' (default 8). */
  steps?: number;
  /** Pairs per backward pass (default 8). */
  batchSize?: number;
  /** Keep per-unit (channel / head) estimates (default false: they are L·T·E numbers per kind). */
  units?: boolean;
}

export interface KindAttribution {
  kind: string;
  unit: 'head' | 'channel';
  layers: number[];
  /** [layer][position]: the estimated change of the metric when the cell is patched from the source. */
  estimate: number[][];
  /** [layer] → [T,U] per channel or head (with options.units). */
  perUnit?: Float32Array[];
  units: number;
}

export interface PairAttribution {
  pair: number;
  direction: Direction;
  method: AttributionMethod;
  /** Metric on the base run (corrupted when denoising) and on the source run. */
  base: number;
  source: number;
  kinds: Record<string, KindAttribution>;
}

/** Kinds whose AtP* estimate is the next hook's, after a pointwise nonlinearity. */
const POINTWISE_NEXT: Record<string, string> = { 'mixer.z': 'mixer.gate', 'mixer.conv': 'mixer.ssm_in', 'mlp.pre': 'mlp.key' };

/** The hook kinds a kind's estimate is computed from. */
function inputsOf(kind: string, method: AttributionMethod): string[] {
  if (method !== 'atp*') return [kind];
  if (kind === 'attn.q' || kind === 'attn.k') return ['attn.q', 'attn.k', 'attn.pattern'];
  return [POINTWISE_NEXT[kind] ?? kind];
}

export async function attributionPatching(model: Model, pairs: PromptPair[], metric: AttributionMetric, opts: AttributionOptions = {}): Promise<PairAttribution[]> {
  checkPairs(pairs);
  const direction = opts.direction ?? 'denoising';
  const method = opts.method ?? 'atp';
  if (!['atp', 'atp*', 'ig', 'graddrop'].includes(method)) throw new FactlensError(`attribution: method must be atp, atp*, ig or graddrop, got "${method}"`);
  const kinds = selectKinds(model, opts.kinds);
  const layers = selectLayers(model, opts.layers);
  const names = [...new Set(kinds.flatMap((k) => inputsOf(k.kind, method)).flatMap((k) => layers.map((l) => hookOf(k, l))))];
  const out: PairAttribution[] = [];
  for (const { chunk, p0, pairOf, rows } of pairBatches(pairs, opts.batchSize ?? 8, direction)) {
    const src = await model.run(rows.source, { cache: names, logits: 'last' });
    const pass = method === 'ig'
      ? await integratedGradPass(model, rows.base, rows.source, pairOf, metric, names, opts.steps ?? 8)
      : method === 'graddrop' ? await gradDropPass(model, rows.base, pairOf, metric, names) : await gradPass(model, rows.base, pairOf, metric, names);
    const sourceValues = metricValues(src.logits!, pairOf, metric);
    const srcOf = (n: string) => src.cache.get(n);
    chunk.forEach((pair, b) => {
      const est = (k: AttributionKind, l: number) => estimateOf(k, l, method, pass, srcOf, b, pair.clean.length, slidingWindowAt(model.config, l));
      const byKind: Record<string, KindAttribution> = {};
      for (const k of kinds) {
        const rowsOf = layers.map((l) => est(k, l));
        byKind[k.kind] = {
          kind: k.kind, unit: k.unit, layers, units: rowsOf[0].units,
          estimate: rowsOf.map((r) => Array.from(r.perPosition)),
          perUnit: opts.units ? rowsOf.map((r) => r.perUnit) : undefined,
        };
      }
      out.push({ pair: p0 + b, direction, method, base: pass.values[b], source: sourceValues[b], kinds: byKind });
    });
  }
  return out;
}

function estimateOf(k: AttributionKind, l: number, method: AttributionMethod, pass: GradPass, src: (n: string) => Tensor, b: number, length: number, window?: number): RowEstimate {
  const at = (kind: string) => hookOf(kind, l);
  if (method === 'atp*' && (k.kind === 'attn.q' || k.kind === 'attn.k')) {
    const which = k.kind === 'attn.q' ? 'q' : 'k';
    return qkRowEstimate({
      qBase: pass.acts.get(at('attn.q'))!, kBase: pass.acts.get(at('attn.k'))!, src: src(at(k.kind)), gradPattern: pass.grads.get(at('attn.pattern'))!, window,
    }, which, b, length);
  }
  const n = at(inputsOf(k.kind, method)[0]);
  const heads = k.unit === 'head';
  if (method === 'graddrop') return gradDropEstimate((pass as GradDropPass).dropped.map((g) => rowEstimate(src(n), pass.acts.get(n)!, g.get(n)!, b, length, heads)));
  return rowEstimate(src(n), pass.acts.get(n)!, pass.grads.get(n)!, b, length, heads);
}

/** 1/(L−1) Σ_ℓ |estimate with layer ℓ dropped|, per cell and per unit (L = 1: the plain magnitude). */
function gradDropEstimate(perLayer: RowEstimate[]): RowEstimate {
  const scale = 1 / Math.max(1, perLayer.length - 1);
  const perPosition = new Float64Array(perLayer[0].perPosition.length); // [T]
  const perUnit = new Float32Array(perLayer[0].perUnit.length); // [T,U]
  for (const r of perLayer) {
    r.perPosition.forEach((x, i) => (perPosition[i] += Math.abs(x) * scale));
    r.perUnit.forEach((x, i) => (perUnit[i] += Math.abs(x) * scale));
  }
  return { perPosition, perUnit, units: perLayer[0].units };
}
