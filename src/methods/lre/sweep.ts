/**
 * The paper's LRE sweep (evandez/relations sweeps.py, paper-spec §4.2) for
 * one relation: per trial, a random split into n training samples and test
 * candidates; the test set = candidates the model itself answers correctly
 * under the few-shot prompt (knowledge filter); per layer, the LRE from the
 * training samples, its faithfulness at the best β and its causality at the
 * best rank. One row per (trial, layer). A split whose filtered test set is too
 * small is redrawn (a new seed), as upstream does, until `trials` splits succeed.
 */
import type { Model } from '../../runtime/model';
import { rng } from '../../runtime/generate';
import { Relation, RelationSample } from '../../data/relations';
import { encodePrompts, EncodedPrompt, streamLast } from './encode';
import { Tensor } from '../../runtime/tensor';
import { decodeTopK } from './operator';
import { estimateFromEncoded, trainingPrompts } from './estimator';
import { betaGrid, causality, CausalityResult, editTargets, faithfulness, FaithfulnessResult, LreTest, modelPredictions, rankGrid } from './metrics';
import type { LinearRelation } from './operator';
import { isNontrivialPrefix, makeIclPrompt, shuffled, subjectPrompt } from './prompts';
import { LreLayer, layerLabel, lreLayers, zStream } from './sites';
import { CheckpointOption, withOptionalLog } from '../../runtime/run-log';
import { runSettings } from '../../runtime/run-settings';
import { throwIfAborted } from '../../runtime/abort';

export interface SweepSettings {
  layers?: LreLayer[];
  /** Trials (random splits that leave enough known tests); the paper: 3. */
  trials?: number;
  /** Splits drawn at most to get `trials` usable ones (default 5 × trials). */
  maxSplits?: number;
  /** Stops the sweep before its next trial or layer (runtime/abort.ts). */
  signal?: AbortSignal;
  /** Training samples per LRE; the paper: 5. */
  nTrain?: number;
  betas?: number[];
  ranks?: number[];
  /** recall@k reported besides recall@1; the paper: 3. */
  k?: number;
  /** Cap on the filtered test set (null: all). */
  maxTest?: number | null;
  /** Cap on candidates run through the knowledge filter (null: all). */
  maxCandidates?: number | null;
  /** Template index in relation.promptTemplates (the paper: 0). */
  template?: number;
  seed?: number;
  /** Skip causality (faithfulness only). */
  causality?: boolean;
  onProgress?: (msg: string) => void;
  /** Called per (trial, layer) with the LRE and its metrics (e.g. to keep an example for display). */
  onLayer?: (info: { trial: number; layer: LreLayer; lre: LinearRelation; faithfulness: FaithfulnessResult; causality: CausalityResult | null; data: TrialData }) => void;
  /**
   * A run-log file (see runtime/run-log.ts): the rows of each finished trial (one per layer) are
   * appended durably, and a rerun with the same path and settings resumes with the missing trials
   * (onLayer is not called for rows read back).
   */
  checkpoint?: CheckpointOption;
}

export interface SweepRow {
  relation: string;
  model: string;
  trial: number;
  layer: string;
  layerIndex: number; // −1 for emb
  nTrain: number;
  nTest: number;
  faithfulness: number; // recall@1 at the best β
  recallK: number; // recall@k at that β
  beta: number;
  causality: number; // efficacy at the best rank (NaN if skipped)
  rank: number;
  /** Majority-object baseline of the test set (the fraction a constant answer gets right). */
  baseline: number;
  /** Fraction of the test set whose own z (the z stream, decoded) names the object: the ceiling of faithfulness. */
  zDecode: number;
}

export interface TrialData {
  train: RelationSample[];
  tests: (LreTest & { subject: string })[];
  /** Candidates run through the knowledge filter. */
  candidates: number;
}

/** One trial's split and knowledge-filtered, encoded test set (null if too few tests, as in the paper). */
export async function prepareTrial(model: Model, relation: Relation, trial: number, s: SweepSettings = {}): Promise<TrialData | null> {
  const nTrain = s.nTrain ?? 5;
  const template = relation.promptTemplates[s.template ?? 0];
  const samples = shuffled(dedupe(relation.samples), rng((s.seed ?? 0) * 1000 + trial));
  if (samples.length <= nTrain) return null;
  const train = samples.slice(0, nTrain);
  const candidates = samples.slice(nTrain, s.maxCandidates == null ? undefined : nTrain + s.maxCandidates);
  // Knowledge filter in chunks (encoded prompts are large), stopping once maxTest subjects are known.
  const tests: TrialData['tests'] = [];
  let run = 0;
  for (let i = 0; i < candidates.length && (s.maxTest == null || tests.length < s.maxTest); i += FILTER_CHUNK) {
    const part = candidates.slice(i, i + FILTER_CHUNK);
    const encoded = await encodePrompts(model, part.map((c) => subjectPrompt(model, makeIclPrompt(template, c.subject, train), c.subject)));
    const top = modelPredictions(model, encoded, 1);
    part.forEach((c, j) => {
      if (isNontrivialPrefix(top[j][0].token, c.object) && (s.maxTest == null || tests.length < s.maxTest)) tests.push({ prompt: encoded[j], object: c.object, subject: c.subject });
    });
    run += part.length;
  }
  if (new Set(tests.map((t) => t.object)).size < 2 || tests.length <= nTrain) return null;
  return { train, tests, candidates: run };
}

const FILTER_CHUNK = 64;

function dedupe(samples: RelationSample[]): RelationSample[] {
  const seen = new Set<string>();
  return samples.filter((x) => (seen.has(x.subject) ? false : (seen.add(x.subject), true)));
}

/** Fraction of tests whose z (decoded with the final norm and unembedding) names the object. */
export async function decodeZ(model: Model, tests: LreTest[]): Promise<number> {
  const D = model.config.dModel;
  const e = zStream(model);
  const zs = new Float32Array(tests.length * D); // [N,D]
  tests.forEach((t, i) => zs.set(streamLast(model, t.prompt, e), i * D));
  const preds = await decodeTopK(model, new Tensor(zs, [tests.length, D]), 1);
  return preds.filter((p, i) => isNontrivialPrefix(p[0].token, tests[i].object)).length / tests.length;
}

function majorityBaseline(objects: string[]): number {
  const counts = new Map<string, number>();
  for (const o of objects) counts.set(o.toLowerCase(), (counts.get(o.toLowerCase()) ?? 0) + 1);
  return Math.max(...counts.values()) / objects.length;
}

/** The sweep of one relation: rows per (trial, layer). */
export async function sweepRelation(model: Model, relation: Relation, s: SweepSettings = {}): Promise<SweepRow[]> {
  const layers = s.layers ?? lreLayers(model);
  const trials = s.trials ?? 3;
  const betas = s.betas ?? betaGrid(model);
  const ranks = s.ranks ?? rankGrid(model);
  const k = s.k ?? 3;
  const template = relation.promptTemplates[s.template ?? 0];
  const maxSplits = s.maxSplits ?? 5 * trials;
  /** The rows of one split used as trial `trial` (one per layer), or null when the split is redrawn. */
  const splitRows = async (split: number, trial: number): Promise<SweepRow[] | null> => {
    // Split `split` is seeded by its index, so a relation whose first splits all work gets the same trials as before.
    const data = await prepareTrial(model, relation, split, s);
    if (!data) {
      s.onProgress?.(`${relation.id} split ${split}: redrawn (too few known test samples)`);
      return null;
    }
    const rows: SweepRow[] = [];
    const { train, tests } = data;
    s.onProgress?.(`${relation.id} trial ${trial}: ${tests.length} known of ${data.candidates} candidates`);
    const trainEncoded: EncodedPrompt[] = await encodePrompts(model, trainingPrompts(model, template, train));
    const lres = await estimateFromEncoded(model, trainEncoded, layers, { relation: relation.id, template, trainSubjects: train.map((x) => x.subject) });
    const targets = editTargets(tests, rng((s.seed ?? 0) * 1000 + trial + 7919));
    const baseline = majorityBaseline(tests.map((t) => t.object));
    const zDecode = await decodeZ(model, tests);
    for (const layer of layers) {
      throwIfAborted(s.signal);
      const lre = lres.get(layer)!;
      const f = await faithfulness(model, lre, tests, { betas, k });
      const c = s.causality === false ? null : await causality(model, lre, tests, targets, { ranks });
      s.onLayer?.({ trial, layer, lre, faithfulness: f, causality: c, data });
      rows.push({
        relation: relation.id,
        model: model.name,
        trial,
        layer: layerLabel(layer),
        layerIndex: layer === 'emb' ? -1 : layer,
        nTrain: train.length,
        nTest: tests.length,
        faithfulness: f.recall[0],
        recallK: f.recall[Math.min(k, f.recall.length) - 1],
        beta: f.beta,
        causality: c ? c.efficacy : NaN,
        rank: c ? c.rank : NaN,
        baseline,
        zDecode,
      });
    }
    s.onProgress?.(`${relation.id} trial ${trial}: done`);
    return rows;
  };
  // Units: a split (its rows, one per layer, or null if redrawn), appended to the run log when checkpointed.
  const settings = () => runSettings(model, { ...s, layers, trials, betas, ranks, k, maxSplits }, relation);
  const rows: SweepRow[] = [];
  let trial = 0;
  await withOptionalLog<SweepRow[] | null>(s.checkpoint, 'lre.sweepRelation', settings, async (unit) => {
    for (let split = 0; trial < trials && split < maxSplits; split++) {
      throwIfAborted(s.signal);
      const got = await unit(`split ${split}`, () => splitRows(split, trial));
      if (!got) {
        if (dedupe(relation.samples).length <= (s.nTrain ?? 5)) break; // no split can work
        continue;
      }
      rows.push(...got);
      trial++;
    }
  });
  if (trial < trials) s.onProgress?.(`${relation.id}: ${trial} of ${trials} trials (no more usable splits in ${maxSplits})`);
  if (!rows.length) {
    console.warn(
      `lre.sweepRelation: relation "${relation.id}" gave no rows on ${model.name}: in ${maxSplits} splits the model knew too few of its ` +
        `${relation.samples.length} samples under the few-shot prompt (a trial needs more than nTrain = ${s.nTrain ?? 5} known test samples with at least 2 distinct objects)`,
    );
  }
  return rows;
}
