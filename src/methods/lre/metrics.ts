/**
 * The two LRE metrics of paper-spec §4.2.
 *
 * Faithfulness: decode ẑ = β·J h + b (final norm + unembedding) for each test
 * subject; recall@k = the fraction whose top-k tokens contain a non-trivial,
 * case- and space-insensitive prefix of the object. The β grid is searched
 * and the best recall@1 kept.
 *
 * Causality (efficacy): for a test subject s and a target s′ with another
 * subject and object, add Δh = J_r⁺ (z_{s′} − z_s) to h at the subject's last
 * token and read the model's next token; success if it is a non-trivial
 * prefix of o′. The rank r of the pseudo-inverse is searched.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { EncodedPrompt, RunRow, runFrom, streamAt, streamLast } from './encode';
import { combine, decodeTopK, LinearRelation, topK, TokenPrediction } from './operator';
import { isNontrivialPrefix } from './prompts';
import { Tensor } from '../../runtime/tensor';

/** A test case: an encoded prompt and the object the model should name. */
export interface LreTest {
  prompt: EncodedPrompt;
  object: string;
}

/** [recall@1, …, recall@k]: top-i tokens contain a non-trivial prefix of the target. */
export function recallAtK(predictions: string[][], targets: string[]): number[] {
  if (predictions.length !== targets.length) throw new FactlensError(`recallAtK: ${predictions.length} predictions for ${targets.length} targets`);
  if (!targets.length) return [];
  const k = Math.max(...predictions.map((p) => p.length));
  const hits = new Array(k).fill(0);
  predictions.forEach((topk, n) => {
    const first = topk.findIndex((p) => isNontrivialPrefix(p, targets[n]));
    if (first >= 0) for (let i = first; i < k; i++) hits[i]++;
  });
  return hits.map((h) => h / targets.length);
}

/** β values linspace(0, βmax, steps) (the paper: βmax 12 for Mamba, 6 for Pythia; 25 steps). */
export function betaGrid(model: Model, steps = 25, max = model.arch === 'mamba' ? 12 : 6): number[] {
  return Array.from({ length: steps }, (_, i) => (steps === 1 ? max : (max * i) / (steps - 1)));
}

/** Ranks range(0, max, step) (the paper: 512 for Mamba-2.8b, 320 for Pythia; here capped at d_model). */
export function rankGrid(model: Model, step = 8, max = model.config.dModel): number[] {
  const out: number[] = [];
  for (let r = 0; r < max; r += step) out.push(r);
  return out;
}

export interface FaithfulnessResult {
  byBeta: { beta: number; recall: number[] }[];
  /** The β with the best recall@1 (the first on ties). */
  beta: number;
  recall: number[];
  /** Top-k LRE predictions per test at the best β. */
  predictions: TokenPrediction[][];
}

/** Faithfulness of an LRE on test prompts, over a β grid (recall@1..k). */
export async function faithfulness(model: Model, lre: LinearRelation, tests: LreTest[], opts: { betas?: number[]; k?: number } = {}): Promise<FaithfulnessResult> {
  if (!tests.length) throw new FactlensError('faithfulness: no test cases');
  const betas = opts.betas ?? [lre.beta];
  const k = opts.k ?? 3;
  const jh = lre.jh(tests.map((t) => streamAt(model, t.prompt, lre.info.hStream)));
  const objects = tests.map((t) => t.object);
  const D = lre.dim;
  const N = tests.length;
  // Every β at once: one decode of [nβ·N, D].
  const all = new Float32Array(betas.length * N * D); // [nβ·N,D]
  betas.forEach((beta, i) => all.set(combine(jh, lre.b, beta).data, i * N * D));
  const preds = await decodeTopK(model, new Tensor(all, [betas.length * N, D]), k);
  const byBeta: FaithfulnessResult['byBeta'] = [];
  let best: { beta: number; recall: number[]; predictions: TokenPrediction[][] } | null = null;
  betas.forEach((beta, i) => {
    const mine = preds.slice(i * N, (i + 1) * N);
    const recall = recallAtK(mine.map((p) => p.map((x) => x.token)), objects);
    byBeta.push({ beta, recall });
    if (!best || recall[0] > best.recall[0]) best = { beta, recall, predictions: mine };
  });
  return { byBeta, ...best! };
}

/** The model's own top-k next tokens for encoded prompts. */
export function modelPredictions(model: Model, prompts: EncodedPrompt[], k = 1): TokenPrediction[][] {
  return prompts.map((p) => topK(model, p.logits, k));
}

/** For each test, a random other test with a different subject and object (index), or -1 if none. */
export function editTargets(tests: { subject: string; object: string }[], random: () => number): number[] {
  return tests.map((t, i) => {
    const ok = tests.map((u, j) => j).filter((j) => j !== i && tests[j].subject !== t.subject && tests[j].object.toLowerCase() !== t.object.toLowerCase());
    return ok.length ? ok[Math.floor(random() * ok.length)] : -1;
  });
}

export interface CausalityResult {
  byRank: { rank: number; efficacy: number }[];
  /** The rank with the best efficacy (the first on ties). */
  rank: number;
  efficacy: number;
}

/**
 * Causality of an LRE: edit h of test i towards test targets[i] with the
 * rank-r pseudo-inverse of the unscaled J, for each rank; returns efficacy
 * per rank and the best.
 */
export async function causality(
  model: Model,
  lre: LinearRelation,
  tests: LreTest[],
  targets: number[],
  opts: { ranks?: number[]; batchSize?: number } = {},
): Promise<CausalityResult> {
  const ranks = opts.ranks ?? [lre.dim];
  const bs = opts.batchSize ?? (model.arch === 'mamba' ? 256 : 64);
  const k = lre.info.hStream;
  const e = lre.info.zStream;
  const cases = tests.map((t, i) => ({ i, j: targets[i] })).filter((c) => c.j >= 0);
  if (!cases.length) throw new FactlensError('causality: no test case has an edit target');
  const rows: (RunRow & { rank: number; target: string })[] = [];
  for (const { i, j } of cases) {
    const zi = streamLast(model, tests[i].prompt, e);
    const zj = streamLast(model, tests[j].prompt, e);
    const dz = Float64Array.from(zj, (v, n) => v - zi[n]);
    const deltas = lre.inverse(dz, ranks);
    ranks.forEach((rank, r) => rows.push({ prompt: tests[i].prompt, delta: deltas[r], rank, target: tests[j].object }));
  }
  const hits = new Map<number, number>(ranks.map((r) => [r, 0]));
  for (let s = 0; s < rows.length; s += bs) {
    const part = rows.slice(s, s + bs);
    const res = await runFrom(model, part, k);
    const V = res.logits!.shape[2];
    part.forEach((row, b) => {
      const [top] = topK(model, res.logits!.data, 1, b * V, V);
      if (isNontrivialPrefix(top.token, row.target)) hits.set(row.rank, hits.get(row.rank)! + 1);
    });
  }
  const byRank = ranks.map((rank) => ({ rank, efficacy: hits.get(rank)! / cases.length }));
  const best = byRank.reduce((a, b) => (b.efficacy > a.efficacy ? b : a));
  return { byRank, rank: best.rank, efficacy: best.efficacy };
}
