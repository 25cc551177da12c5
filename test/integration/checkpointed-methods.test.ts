/**
 * `{ checkpoint }` on the long-running methods (issue #16, defect 7): a checkpointed run gives the
 * rows of a plain run; a rerun with the same path and settings reads every unit back and computes
 * none (no progress callback, no model call for units); other settings are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { RunLogError } from '../../src/runtime/run-log';
import { knownRecords, loadCounterFact, CounterFactRecord } from '../../src/data/counterfact';
import { evaluateEdits } from '../../src/methods/rome/evaluate';
import { romeLayerSweep } from '../../src/methods/rome/sweep';
import { sweepRelation } from '../../src/methods/lre/sweep';
import { loadRelation } from '../../src/data/relations';
import { knownFacts } from '../../src/data/known-facts';
import { traceFacts } from '../../src/methods/causal-tracing';
import { factPrompts, mambaKnockout } from '../../src/methods/information-flow';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');
let tmp: string;
let mamba: Model;
let neox: Model;
let n = 0;
const file = () => path.join(tmp, `run${n++}.jsonl`);
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-ckpt-'));
  mamba = await Model.load(path.join(MODELS, 'mamba-facts'));
  neox = await Model.load(path.join(MODELS, 'neox-facts'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Columns of rows that are not wall-clock times. */
const untimed = <T extends object>(rows: T[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !/Seconds$/.test(k))));

describe('causalTracing.traceFacts', () => {
  it('resumes from its log; a rerun traces nothing; other kinds are refused', async () => {
    const facts = (await knownFacts(mamba, [loadRelation('country_capital_city')], { limit: 3 }));
    const opts = { pool: facts, seed: 0, kinds: ['residual' as const], chunk: 2 };
    const plain = await traceFacts(mamba, facts, opts);
    const f = file();
    const a = await traceFacts(mamba, facts, { ...opts, checkpoint: f });
    expect(a.results.length).toBe(3);
    a.results.forEach((r, i) => r[0].p.forEach((row, t) => row.forEach((x, l) => expect(x).toBeCloseTo(plain.results[i][0].p[t][l], 6))));
    let calls = 0;
    const b = await traceFacts(mamba, facts, { ...opts, checkpoint: f, onProgress: () => calls++ });
    expect(calls).toBe(0);
    expect(b.results).toEqual(a.results);
    await expect(traceFacts(mamba, facts, { ...opts, kinds: ['ssm'], checkpoint: f })).rejects.toThrow(RunLogError);
  });
});

describe('ROME', () => {
  let records: CounterFactRecord[];
  const settings = { templates: { lengths: [[5, 1]] as Array<[number, number]> }, steps: 6, stats: { samples: 1000, maxLength: 128, cache: false as const, progress: false }, progress: false };
  beforeAll(async () => {
    records = (await knownRecords(neox, loadCounterFact().slice(0, 40))).slice(0, 2);
  });

  it('evaluateEdits resumes case by case; a rerun edits nothing', async () => {
    const plain = await evaluateEdits(neox, records, { ...settings, layer: 2 });
    const g = file();
    const full = await evaluateEdits(neox, records, { ...settings, layer: 2, checkpoint: g });
    expect(untimed(full.cases)).toEqual(untimed(plain.cases));
    let edits = 0;
    const again = await evaluateEdits(neox, records, { ...settings, layer: 2, checkpoint: g, onCase: () => edits++ });
    expect(edits).toBe(0);
    expect(again.cases).toEqual(full.cases);
    // Other records under the same path: refused, never mixed.
    await expect(evaluateEdits(neox, records.slice(0, 1), { ...settings, layer: 2, checkpoint: g })).rejects.toThrow(/other settings \(data/);
  });

  it('romeLayerSweep keeps record × site units in one log', async () => {
    const f = file();
    const a = await romeLayerSweep(neox, records.slice(0, 1), { ...settings, layers: [1, 3], checkpoint: f });
    let edits = 0;
    const b = await romeLayerSweep(neox, records.slice(0, 1), { ...settings, layers: [1, 3], checkpoint: f, onCase: () => edits++ });
    expect(edits).toBe(0);
    expect(b.cases).toEqual(a.cases);
    expect(fs.readFileSync(f, 'utf8').trim().split('\n').length).toBe(1 + 2); // header + one unit per (record, site)
    await expect(romeLayerSweep(neox, records.slice(0, 1), { ...settings, layers: [1, 4], checkpoint: f })).rejects.toThrow(/other settings \(options/);
  });
});

describe('lre.sweepRelation', () => {
  const s = { layers: [13, 15] as number[], trials: 2, nTrain: 3, maxCandidates: 16, maxTest: 6, betas: [0, 1], ranks: [0, 64] };

  it('resumes trial by trial; a rerun computes nothing', async () => {
    const relation = loadRelation('country_capital_city');
    const plain = await sweepRelation(mamba, relation, s);
    const f = file();
    const a = await sweepRelation(mamba, relation, { ...s, checkpoint: f });
    expect(a).toEqual(plain);
    let layers = 0;
    const b = await sweepRelation(mamba, relation, { ...s, checkpoint: f, onLayer: () => layers++ });
    expect(layers).toBe(0);
    expect(b).toEqual(a);
  });

  it('a relation with no known facts gives a message, not silence', async () => {
    const relation = { ...loadRelation('country_capital_city'), id: 'nonsense', samples: loadRelation('country_capital_city').samples.slice(0, 8).map((x, i) => ({ ...x, object: `Zq${i}xv` })) };
    const warned: string[] = [];
    const orig = console.warn;
    console.warn = (m: unknown) => warned.push(String(m));
    try {
      expect(await sweepRelation(mamba, relation, { ...s, trials: 1 })).toEqual([]);
    } finally {
      console.warn = orig;
    }
    expect(warned.join('\n')).toMatch(/relation "nonsense" gave no rows on mamba-facts: in 5 splits the model knew too few of its 8 samples/);
  });
});

describe('informationFlow knockout', () => {
  it('mambaKnockout resumes prompt group by prompt group; a rerun runs nothing', async () => {
    const prompts = (await factPrompts(mamba, ['country_capital_city'], { perRelation: 5, samplesPerRelation: 40 })).slice(0, 5);
    const opts = { method: 'exact' as const, window: 2, centers: [2, 8], sets: ['subject' as const, 'prompt_last' as const] };
    const plain = (await mambaKnockout(mamba, prompts, opts)).objects();
    const f = file();
    const a = (await mambaKnockout(mamba, prompts, { ...opts, checkpoint: f })).objects() as Array<Record<string, number>>;
    expect(a.length).toBe(plain.length);
    a.forEach((r, i) => expect(r.p).toBeCloseTo((plain[i] as Record<string, number>).p, 5)); // other batches: float32 rounding only
    let runs = 0;
    const b = (await mambaKnockout(mamba, prompts, { ...opts, checkpoint: f, onProgress: () => runs++ })).objects();
    expect(runs).toBe(0);
    expect(b).toEqual(a);
  });
});
