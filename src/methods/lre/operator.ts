/**
 * A linear relational embedding: ẑ(h) = β·J h + b, read out with the model's
 * final norm and unembedding. β scales only J h (paper-spec §4.1); low-rank
 * variants replace J by its best rank-r approximation; the rank-r
 * pseudo-inverse of the unscaled J maps a wanted change of z back to h.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { Tensor } from '../../runtime/tensor';
import { probOf, topKIndices } from '../../runtime/logits';
import { LreLayer } from './sites';
import { lowRankApprox, matrix, Matrix, pinvApplyRanks, svd, Svd } from './linalg';

export interface LreInfo {
  /** Relation id and the template the LRE was estimated with. */
  relation?: string;
  template?: string;
  layer: LreLayer;
  hStream: number;
  zStream: number;
  /** Subjects of the training prompts the Jacobians were averaged over. */
  trainSubjects?: string[];
}

export class LinearRelation {
  private svdCache: Svd | null = null;

  constructor(
    /** Mean Jacobian [D,D] row-major (unscaled). */
    readonly J: Float32Array,
    /** Mean bias [D]. */
    readonly b: Float32Array,
    readonly info: LreInfo,
    /** Scale of J h. */
    readonly beta = 1,
    /** Use only the top `rank` singular directions of J (null: full J). */
    readonly rank: number | null = null,
  ) {
    const D = b.length;
    if (J.length !== D * D) throw new FactlensError(`LinearRelation: J has ${J.length} entries, expected ${D}×${D}`);
  }

  get dim(): number {
    return this.b.length;
  }

  /** The same LRE with another β (the SVD is shared). */
  withBeta(beta: number): LinearRelation {
    const r = new LinearRelation(this.J, this.b, this.info, beta, this.rank);
    r.svdCache = this.svdCache;
    return r;
  }

  /** The same LRE with J replaced by its best rank-r approximation (null: full rank). */
  withRank(rank: number | null): LinearRelation {
    const r = new LinearRelation(this.J, this.b, this.info, this.beta, rank);
    r.svdCache = this.svdCache;
    return r;
  }

  /** SVD of the unscaled J (computed once). */
  svd(): Svd {
    if (!this.svdCache) this.svdCache = svd(matrix(this.dim, this.dim, this.J));
    return this.svdCache;
  }

  /** The matrix applied to h: J, or its rank-r approximation. */
  weight(): Matrix {
    if (this.rank === null) return matrix(this.dim, this.dim, this.J);
    return lowRankApprox(this.svd(), this.rank);
  }

  /** J h (or J_r h) for each h, without β or b. */
  jh(hs: ArrayLike<number>[]): Float64Array[] {
    const D = this.dim;
    const W = this.rank === null ? null : this.weight();
    return hs.map((h) => {
      if (h.length !== D) throw new FactlensError(`LinearRelation: h has ${h.length} entries, expected ${D}`);
      const y = new Float64Array(D);
      for (let i = 0; i < D; i++) {
        let s = 0;
        const off = i * D;
        if (W) for (let j = 0; j < D; j++) s += W.data[off + j] * h[j];
        else for (let j = 0; j < D; j++) s += this.J[off + j] * h[j];
        y[i] = s;
      }
      return y;
    });
  }

  /** ẑ = β·J h + b for each h: [N,D]. */
  apply(hs: ArrayLike<number>[]): Tensor {
    return combine(this.jh(hs), this.b, this.beta);
  }

  /** Δh = J_r⁺ Δz for each rank (rank-r pseudo-inverse of the unscaled J). */
  inverse(dz: ArrayLike<number>, ranks: number[]): Float64Array[] {
    return pinvApplyRanks(this.svd(), dz, ranks);
  }
}

/** β·jh + b as a [N,D] tensor. */
export function combine(jh: Float64Array[], b: Float32Array, beta: number): Tensor {
  const D = b.length;
  const out = new Float32Array(jh.length * D); // [N,D]
  jh.forEach((v, n) => {
    for (let i = 0; i < D; i++) out[n * D + i] = beta * v[i] + b[i];
  });
  return new Tensor(out, [jh.length, D]);
}

/** A decoded token: id, its text and probability. */
export interface TokenPrediction {
  id: number;
  token: string;
  prob: number;
}

/** Top-k tokens of one logit row. */
export function topK(model: Model, logits: Float32Array, k: number, off = 0, V = logits.length - off): TokenPrediction[] {
  const row = logits.subarray(off, off + V); // [V]
  return topKIndices(row, k).map((id) => ({ id, token: model.tokenizer ? model.decode([id]) : `<${id}>`, prob: probOf(row, id) }));
}

/** Decode residual vectors [N,D] with the final norm and unembedding; top-k per row. */
export async function decodeTopK(model: Model, zs: Tensor, k: number, batch = 512): Promise<TokenPrediction[][]> {
  const [N, D] = zs.shape;
  const out: TokenPrediction[][] = [];
  for (let i = 0; i < N; i += batch) {
    const n = Math.min(batch, N - i);
    const logits = await model.unembed(new Tensor(zs.data.subarray(i * D, (i + n) * D), [n, D])); // [n,V]
    const V = logits.shape[1];
    for (let r = 0; r < n; r++) out.push(topK(model, logits.data, k, r * V, V));
  }
  return out;
}
