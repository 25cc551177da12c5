/**
 * CounterFact scoring (paper-spec §3.5). For each prompt P and target X ∈ {new, true}:
 * NLL(X|P) = mean over X's tokens of −log p, by teacher forcing P + " " + X (all prompts of a case
 * and both targets in one batch of deduplicated prefixes). prob = exp(−NLL).
 *   ES = [NLL(true) > NLL(new)] on the rewrite prompt, PS = mean over paraphrases, NS = mean over
 *   neighbourhood prompts of [NLL(true) < NLL(new)]; EM/PM = mean(prob(new) − prob(true)),
 *   NM = mean(prob(true) − prob(new)); *_acc: every target token is the argmax.
 * Per case first, then averaged over cases, ×100; S = harmonic mean of ES, PS, NS.
 */
import { makeBatch } from '../../runtime/batch';
import { softmaxRow } from '../../runtime/grad';
import type { Model } from '../../runtime/model';
import { CounterFactRecord, rewritePrompt } from '../../data/counterfact';
import { estimate, formatEstimate } from '../../stats';
import { bootstrapInterval } from '../../stats/bootstrap';
import { FactlensError } from '../../errors';

export interface TargetScore {
  prompt: string;
  nllNew: number;
  nllTrue: number;
  pNew: number;
  pTrue: number;
  accNew: boolean;
  accTrue: boolean;
}

export interface CaseScores {
  caseId: number;
  rewrite: TargetScore;
  paraphrase: TargetScore[];
  neighborhood: TargetScore[];
  ES: number; PS: number; NS: number;
  EM: number; PM: number; NM: number;
  /** Accuracies (every token of the new object is the argmax; true object for neighbourhood). */
  rewriteAcc: number; paraphraseAcc: number; neighborhoodAcc: number;
}

/**
 * Token-averaged NLL and all-argmax accuracy of each continuation, by teacher forcing. Each target
 * token m of X after P needs the next-token distribution after P + X[:m]; these prefixes are
 * deduplicated (P + " new" and P + " true" share P) and run as one batch reading only each row's
 * last position, so single-token objects cost one row per prompt.
 */
export async function continuationScores(model: Model, pairs: Array<{ prompt: string; target: string }>): Promise<{ nll: number; acc: boolean }[]> {
  const enc = pairs.map((p) => ({ prompt: model.encode(p.prompt), target: model.encode(' ' + p.target.trim()) }));
  const rows: number[][] = [];
  const index = new Map<string, number>();
  const rowOf = (ids: number[]) => {
    const key = ids.join(',');
    let r = index.get(key);
    if (r === undefined) index.set(key, (r = rows.push(ids) - 1));
    return r;
  };
  const need = enc.map((e) => e.target.map((_, m) => rowOf(e.prompt.concat(e.target.slice(0, m)))));
  const logits = (await model.run(makeBatch(rows, model.config.vocabSize, model.padId), { logits: 'last' })).logits!; // [R,1,V]
  const V = logits.shape[2];
  return enc.map((e, i) => {
    let nll = 0;
    let acc = true;
    e.target.forEach((tok, m) => {
      const off = need[i][m] * V;
      const { logZ } = softmaxRow(logits.data, off, V);
      nll += (logZ - logits.data[off + tok]) / e.target.length;
      for (let v = 0; v < V; v++) if (logits.data[off + v] > logits.data[off + tok]) { acc = false; break; }
    });
    return { nll, acc };
  });
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Scores of one record under a model (the edited one, or the original for a "pre" baseline). */
export async function scoreCase(model: Model, r: CounterFactRecord): Promise<CaseScores> {
  const newT = r.requested_rewrite.target_new.str;
  const trueT = r.requested_rewrite.target_true.str;
  const prompts = [rewritePrompt(r), ...r.paraphrase_prompts, ...r.neighborhood_prompts];
  const res = await continuationScores(model, prompts.flatMap((prompt) => [{ prompt, target: newT }, { prompt, target: trueT }]));
  const scores: TargetScore[] = prompts.map((prompt, i) => {
    const n = res[2 * i], t = res[2 * i + 1];
    return { prompt, nllNew: n.nll, nllTrue: t.nll, pNew: Math.exp(-n.nll), pTrue: Math.exp(-t.nll), accNew: n.acc, accTrue: t.acc };
  });
  const rewrite = scores[0];
  const paraphrase = scores.slice(1, 1 + r.paraphrase_prompts.length);
  const neighborhood = scores.slice(1 + r.paraphrase_prompts.length);
  return {
    caseId: r.case_id, rewrite, paraphrase, neighborhood,
    ES: rewrite.nllTrue > rewrite.nllNew ? 1 : 0,
    PS: mean(paraphrase.map((s) => (s.nllTrue > s.nllNew ? 1 : 0))),
    NS: mean(neighborhood.map((s) => (s.nllTrue < s.nllNew ? 1 : 0))),
    EM: rewrite.pNew - rewrite.pTrue,
    PM: mean(paraphrase.map((s) => s.pNew - s.pTrue)),
    NM: mean(neighborhood.map((s) => s.pTrue - s.pNew)),
    rewriteAcc: rewrite.accNew ? 1 : 0,
    paraphraseAcc: mean(paraphrase.map((s) => (s.accNew ? 1 : 0))),
    neighborhoodAcc: mean(neighborhood.map((s) => (s.accTrue ? 1 : 0))),
  };
}

export interface Summary {
  n: number;
  ES: number; PS: number; NS: number; S: number;
  EM: number; PM: number; NM: number;
  rewriteAcc: number; paraphraseAcc: number; neighborhoodAcc: number;
}

export function harmonicMean(xs: number[]): number {
  if (xs.some((x) => !(x > 0))) return 0;
  return xs.length / xs.reduce((s, x) => s + 1 / x, 0);
}

/** ES, PS and NS over cases with their standard errors, in %, for prose: "ES 86.0 ± 4.9 (n = 50), PS …, NS …". */
export function scoresText(cases: CaseScores[]): string {
  return (['ES', 'PS', 'NS'] as const).map((k) => `${k} ${formatEstimate(estimate(cases.map((c) => c[k]).filter((x) => !Number.isNaN(x))), { scale: 100 })}`).join(', ');
}

/** Average per case, then over cases, ×100 (ROME's summarize); S = harmonic mean of ES, PS, NS. */
/** S with a 95 % bootstrap interval over records (S is a harmonic mean of means, so it has no per-record value). */
export function scoreS(cases: CaseScores[]): { S: number; lo: number; hi: number; n: number } {
  const { lo, hi } = bootstrapInterval(cases.length, (units) => summarize(Array.from(units, (i) => cases[i])).S);
  return { S: summarize(cases).S, lo, hi, n: cases.length };
}

/** S(a) − S(b) over the same records (a[i], b[i] score record i two ways), with a paired 95 % bootstrap interval. */
export function sDifference(a: CaseScores[], b: CaseScores[]): { diff: number; lo: number; hi: number; n: number } {
  if (a.length !== b.length || a.some((c, i) => c.caseId !== b[i].caseId)) throw new FactlensError('sDifference: a and b must score the same records in the same order');
  const S = (cs: CaseScores[], units: Int32Array) => summarize(Array.from(units, (i) => cs[i])).S;
  const { lo, hi } = bootstrapInterval(a.length, (units) => S(a, units) - S(b, units));
  return { diff: summarize(a).S - summarize(b).S, lo, hi, n: a.length };
}

export function summarize(cases: CaseScores[]): Summary {
  const avg = (k: keyof CaseScores) => 100 * mean(cases.map((c) => c[k] as number).filter((x) => !Number.isNaN(x)));
  const ES = avg('ES'), PS = avg('PS'), NS = avg('NS');
  return {
    n: cases.length, ES, PS, NS, S: harmonicMean([ES, PS, NS]),
    EM: avg('EM'), PM: avg('PM'), NM: avg('NM'),
    rewriteAcc: avg('rewriteAcc'), paraphraseAcc: avg('paraphraseAcc'), neighborhoodAcc: avg('neighborhoodAcc'),
  };
}
