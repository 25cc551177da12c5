/**
 * The information-flow experiments built on path blocking: the batched variant runner (its
 * prefix skipping), the paper's mean-ablation knockout, attention knockout, the path-restoration
 * figure logic, mean activations and the summaries, each checked against a direct run with the
 * library's plain interventions on the random tiny fixture models. Plus one behaviour check on
 * mamba-facts: exact blocking cuts the subject → answer flow that romba's retention-only
 * precursor leaks through the conv.
 */
import { layerWindow } from '../../src/runtime/interventions';
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { ssmLayout } from '../../src/models/ssm';
import { interventionHooks, InterventionSpec } from '../../src/runtime/interventions';
import { ActivationCache } from '../../src/runtime/cache';
import type { HookFn } from '../../src/runtime/forward';
import { Tensor } from '../../src/runtime/tensor';
import {
  attentionKnockout, attentionKnockoutEdits, FactPrompt, mambaKnockout, meanActivations, meanSe, pathBlockingHooks,
  pathRestoration, runVariants, sourcePositions, subjectRange, where, wikitextDocuments, CorruptedPair, knockoutFigure, restorationFigure, restorationPanels, PinKind,
} from '../../src/methods/information-flow';
import { FactlensError } from '../../src/errors';
import { probOf } from '../../src/runtime/logits';

const FULL_ROW = { offset: 0, pastSlots: 0 }; // a RowEdit applied to a full (not resumed) run

const FIX = path.join(__dirname, '..', 'fixtures');
const A1 = [161, 71, 338, 280, 109, 92, 176, 253, 17, 400]; // subject [1,4)
const B1 = [5, 301, 77, 42, 129, 11, 8, 230]; // subject [2,3)
const [A, Bids] = [A1, B1];

let mamba: Model;
let neox: Model;

function fact(model: Model, ids: number[], subject: [number, number], answer: number, pClean: number): FactPrompt {
  return { relation: 'r', subject: 's', object: 'o', template: '{}', prompt: '', ids, subjectRange: subject, answer, answerText: '', pClean };
}

async function top(model: Model, ids: number[]): Promise<{ id: number; p: number }> {
  const lg = (await model.run([ids], { logits: 'last' })).logits!.data;
  const id = lg.indexOf(Math.max(...lg));
  return { id, p: probOf(lg, id) };
}

async function pDirect(model: Model, ids: number[], target: number, hooks: Array<[string, HookFn]>): Promise<number> {
  const lg = (await model.run([ids], { hooks, logits: 'last' })).logits!.data;
  return probOf(lg, target);
}

beforeAll(async () => {
  mamba = await Model.load(path.join(FIX, 'tiny-mamba'));
  neox = await Model.load(path.join(FIX, 'tiny-neox'));
});

describe('helpers', () => {
  it('source sets and windows', () => {
    expect(sourcePositions('subject', [1, 4], 10)).toEqual([1, 2, 3]);
    expect(sourcePositions('subj_last', [1, 4], 10)).toEqual([3]);
    expect(sourcePositions('non_subject', [1, 4], 10)).toEqual([0, 4, 5, 6, 7, 8]);
    expect(sourcePositions('prompt_last', [1, 4], 10)).toEqual([9]);
    expect(layerWindow(0, 10, 64)).toEqual([0, 1, 2, 3, 4]);
    expect(layerWindow(20, 10, 64)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]); // romba [ℓ−5, ℓ+5)
    expect(layerWindow(20, 9, 64)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24]); // centred
    expect(layerWindow(15, 3, 16)).toEqual([14, 15]);
    expect(() => layerWindow(16, 3, 16)).toThrow(FactlensError);
  });

  it('mean and standard error per group', () => {
    const aq = require('arquero');
    const s = meanSe(aq.from([{ g: 'a', layer: 0, v: 1 }, { g: 'a', layer: 0, v: 3 }, { g: 'b', layer: 0, v: 2 }]), ['g', 'layer'], 'v');
    expect(where(s, 'g', 'a')[0]).toMatchObject({ mean: 2, n: 2 });
    expect(where(s, 'g', 'a')[0].se).toBeCloseTo(1, 12); // sd √2 / √2
    expect(where(s, 'g', 'b')[0]).toMatchObject({ mean: 2, se: 0, n: 1 });
  });

  it('WikiText-2 articles', () => {
    const docs = wikitextDocuments(3);
    expect(docs).toHaveLength(3);
    for (const d of docs) expect(d.length).toBeGreaterThan(500);
    expect(docs[0]).not.toMatch(/^ ?=/);
  });
});

describe('mean activations', () => {
  it('average over texts of the per-text position means', async () => {
    const texts = [A, Bids.slice(0, 5)];
    const m = await meanActivations(mamba, texts);
    const E = mamba.mambaConfig.dInner;
    const r = await mamba.runWithCache([A, Bids.slice(0, 5)], ['layers.2.mixer.x'], { logits: 'none' });
    const a = r.cache.get('layers.2.mixer.x'); // [2,T,E]
    const T = a.shape[1];
    for (const e of [0, 7, E - 1]) {
      let want = 0;
      texts.forEach((ids, b) => {
        let s = 0;
        for (let t = 0; t < ids.length; t++) s += a.data[(b * T + t) * E + e];
        want += s / ids.length / texts.length;
      });
      expect(m.data[2 * E + e]).toBeCloseTo(want, 5);
    }
  });
});

for (const fixture of ['tiny-mamba', 'tiny-mamba2']) describe(`Mamba knockout on ${fixture}`, () => {
  let mamba: Model;
  // tiny-mamba2's vocabulary has 256 tokens
  const [A, Bids] = [A1, B1].map((ids) => ids.map((t) => (fixture === 'tiny-mamba2' ? t % 256 : t)));
  beforeAll(async () => {
    mamba = await Model.load(path.join(FIX, fixture));
  });

  it("'mean' equals a direct run: mean at the sources, clean a at other non-final positions, in the window", async () => {
    const { id, p } = await top(mamba, A);
    const E = ssmLayout(mamba.config)!.dInner;
    const means = await meanActivations(mamba, [Bids, A.slice(3)]);
    const tab = await mambaKnockout(mamba, [fact(mamba, A, [1, 4], id, p)], { method: 'mean', means, window: 2, centers: [0, 2], sets: ['subject', 'prompt_last'] });
    const clean = await mamba.runWithCache([A], [...Array(mamba.nLayers).keys()].map((l) => `layers.${l}.mixer.x`), { logits: 'none' });
    const caches = { clean: clean.cache as ActivationCache };
    for (const row of tab.objects() as Array<{ set: 'subject' | 'prompt_last'; layer: number; p: number; change: number }>) {
      const layers = layerWindow(row.layer, 2, mamba.nLayers);
      const src = sourcePositions(row.set, [1, 4], A.length);
      const other = [...Array(A.length - 1).keys()].filter((t) => !src.includes(t));
      const specs: InterventionSpec[] = layers.flatMap((l) => [
        { hook: `layers.${l}.mixer.x`, positions: src, op: 'mean', value: Array.from(means.data.subarray(l * E, (l + 1) * E)) } as InterventionSpec,
        { hook: `layers.${l}.mixer.x`, positions: other, op: 'replace', source: { cache: 'clean' } } as InterventionSpec,
      ]);
      const want = await pDirect(mamba, A, id, interventionHooks(mamba, specs, { caches }));
      expect(row.p).toBeCloseTo(want, 6);
      expect(row.change).toBeCloseTo((want - p) / p, 5);
    }
  });

  it("'exact' equals a direct blocked run from layer 0 (prefix skipping is exact), in a batch of prompts of different lengths", async () => {
    const fa = await top(mamba, A);
    const fb = await top(mamba, Bids);
    const tab = await mambaKnockout(mamba, [fact(mamba, A, [1, 4], fa.id, fa.p), fact(mamba, Bids, [2, 3], fb.id, fb.p)], { method: 'exact', window: 2, sets: ['subject', 'non_subject'] });
    expect(tab.numRows()).toBe(2 * 2 * mamba.nLayers);
    for (const row of tab.objects() as Array<{ prompt: number; set: 'subject' | 'non_subject'; layer: number; p: number }>) {
      const [ids, subj, f] = row.prompt === 0 ? [A, [1, 4] as [number, number], fa] : [Bids, [2, 3] as [number, number], fb];
      const hooks = pathBlockingHooks(mamba, [{ layers: layerWindow(row.layer, 2, mamba.nLayers), targets: 'last', sources: sourcePositions(row.set, subj, ids.length) }]);
      expect(row.p).toBeCloseTo(await pDirect(mamba, ids, f.id, hooks), 6);
    }
  });

  it("'exact' with targets 'others' blocks the sources into every non-source position", async () => {
    const f = await top(mamba, A);
    const tab = await mambaKnockout(mamba, [fact(mamba, A, [1, 4], f.id, f.p)], { method: 'exact', targets: 'others', window: 2, centers: [1], sets: ['subject'] });
    const targets = [0, ...Array.from({ length: A.length - 4 }, (_, i) => i + 4)];
    const hooks = pathBlockingHooks(mamba, [{ layers: layerWindow(1, 2, mamba.nLayers), targets, sources: [1, 2, 3] }]);
    const [row] = tab.objects() as Array<{ p: number }>;
    expect(row.p).toBeCloseTo(await pDirect(mamba, A, f.id, hooks), 6);
  });

  it('needs means for the mean method and a Mamba model', async () => {
    await expect(mambaKnockout(mamba, [fact(mamba, A, [1, 4], 0, 0.5)], { method: 'mean' })).rejects.toThrow(/means/);
    await expect(mambaKnockout(neox, [fact(neox, A, [1, 4], 0, 0.5)])).rejects.toThrow(FactlensError);
  });
});

describe('attention knockout', () => {
  it('cut edges get zero attention in every head; other queries and layers are untouched', async () => {
    const T = A.length;
    const names = [0, 1, 2].map((l) => `layers.${l}.attn.pattern`);
    const clean = await neox.runWithCache([A], names, { logits: 'none' });
    const edits = attentionKnockoutEdits([1], T - 1, [1, 2, 3]);
    const tab = await runVariants(neox, [{ ids: A, target: 0, edits }]);
    const hooks: Array<[string, HookFn]> = [[edits[0].hook, (act: Tensor) => {
      const out = act.clone();
      edits[0].apply(out.data.subarray(0, out.stride(0)), out.shape.slice(1), FULL_ROW);
      return out;
    }]];
    // The runner's probability is the one a direct run with the same cut gives, and the cut matters.
    const pCut = await pDirect(neox, A, 0, hooks);
    expect(tab[0]).toBeCloseTo(pCut, 6);
    expect(Math.abs(pCut - (await pDirect(neox, A, 0, [])))).toBeGreaterThan(1e-6);
    const cut = await neox.runWithCache([A], names, { hooks, logits: 'none' });
    const H = neox.neoxConfig.nHead;
    const p0 = clean.cache.get('layers.0.attn.pattern').data;
    const p1 = cut.cache.get('layers.1.attn.pattern').data;
    const c1 = clean.cache.get('layers.1.attn.pattern').data;
    expect(Array.from(cut.cache.get('layers.0.attn.pattern').data)).toEqual(Array.from(p0));
    for (let h = 0; h < H; h++) {
      for (const q of [1, 2, 3]) expect(p1[(h * T + T - 1) * T + q]).toBe(0);
      let sum = 0;
      for (let k = 0; k < T; k++) sum += p1[(h * T + T - 1) * T + k];
      expect(sum).toBeCloseTo(1, 5);
      for (let t = 0; t < T - 1; t++) for (let k = 0; k < T; k++) expect(p1[(h * T + t) * T + k]).toBe(c1[(h * T + t) * T + k]);
    }
  });

  it('cutting the last token off every earlier token in every layer = running it alone (rotary is relative)', async () => {
    const T = A.length;
    const all = [...Array(neox.nLayers).keys()];
    const [p] = await runVariants(neox, [{ ids: A, target: 7, edits: attentionKnockoutEdits(all, T - 1, [...Array(T - 1).keys()]) }]);
    const lg = (await neox.run([[A[T - 1]]], { logits: 'last' })).logits!.data;
    expect(p).toBeCloseTo(probOf(lg, 7), 6);
  });

  it('the experiment table (rows resumed at their last token from cached keys/values) matches full runs', async () => {
    // Two prompts of different lengths share batches: their rows resume at different positions.
    const facts = [];
    for (const [ids, subj] of [[Bids, [2, 3]], [A, [1, 4]]] as Array<[number[], [number, number]]>) {
      const f = await top(neox, ids);
      facts.push(fact(neox, ids, subj, f.id, f.p));
    }
    const tab = await attentionKnockout(neox, facts, { window: 3, centers: [1, 3], sets: ['subject', 'prompt_last'] });
    expect(tab.numRows()).toBe(8);
    for (const row of tab.objects() as Array<{ prompt: number; set: 'subject' | 'prompt_last'; layer: number; p: number }>) {
      const { ids, subjectRange, answer } = facts[row.prompt];
      const edits = attentionKnockoutEdits(layerWindow(row.layer, 3, 4), ids.length - 1, sourcePositions(row.set, subjectRange, ids.length));
      const [want] = await runVariants(neox, [{ ids, target: answer, edits }]);
      expect(row.p).toBeCloseTo(want, 6);
    }
  });
});

describe('path restoration', () => {
  for (const arch of ['mamba', 'neox'] as const) {
    it(`${arch}: matches a direct run (restore h_i^ℓ from the clean run, pin later components to the corrupted run); last layer at the last token recovers fully`, async () => {
      const model = arch === 'mamba' ? mamba : neox;
      const clean = A; // subject [1,4)
      const alt = [161, 12, 280, 109, 92, 176, 253, 17, 400]; // subject [1,2): one token shorter
      const f = await top(model, clean);
      const [low] = await runVariants(model, [{ ids: alt, target: f.id }]);
      const pair: CorruptedPair = { clean: fact(model, clean, [1, 4], f.id, f.p), altSubject: 'x', altPrompt: '', altIds: alt, altSubjectRange: [1, 2], high: f.p, low };
      const pins: PinKind[] = arch === 'mamba' ? ['none', 's', 'g', 'o'] : ['none', 'mlp', 'attn'];
      const tab = await pathRestoration(model, [pair], { pins });
      expect(tab.numRows()).toBe(2 * pins.length * model.nLayers);
      const L = model.nLayers;
      const names = (n: string) => [...Array(L).keys()].map((l) => `layers.${l}.${n}`);
      const pinHook = { s: 'mixer.ssm_out', g: 'mixer.gate', o: 'mixer.out', mlp: 'mlp.out', attn: 'attn.out' } as Record<string, string>;
      const cc = (await model.runWithCache([clean], names('resid_post'), { logits: 'none' })).cache;
      const kc = (await model.runWithCache([alt], pins.filter((p) => p !== 'none').flatMap((p) => names(pinHook[p])), { logits: 'none' })).cache;
      const rows = tab.objects() as Array<{ token: string; pin: string; layer: number; p: number; ie: number }>;
      for (const row of rows.filter((r) => r.layer === 1 || r.layer === L - 1)) {
        const [ic, ik] = row.token === 'last' ? [clean.length - 1, alt.length - 1] : [3, 1];
        const pin = pins.find((p) => row.pin.startsWith(p === 'none' ? 'recovery' : p === 'mlp' ? 'MLP' : p === 'attn' ? 'attention' : `${p} `))!;
        const specs: InterventionSpec[] = [{ hook: `layers.${row.layer}.resid_post`, positions: [ik], op: 'replace', source: { cache: 'clean', position: ic } }];
        if (pin !== 'none') for (let l = row.layer + 1; l < L; l++) specs.push({ hook: `layers.${l}.${pinHook[pin]}`, positions: [ik], op: 'replace', source: { cache: 'corrupt' } });
        const want = await pDirect(model, alt, f.id, interventionHooks(model, specs, { caches: { clean: cc, corrupt: kc } }));
        expect(row.p).toBeCloseTo(want, 6);
        if (row.token === 'last' && row.layer === L - 1) expect(row.ie).toBeCloseTo(1, 4); // the clean final residual gives the clean answer
      }
    });
  }

  it('rejects pins of the other architecture', async () => {
    await expect(pathRestoration(neox, [], { pins: ['s'] })).rejects.toThrow(/pin "s"/);
  });
});

describe('figures', () => {
  it('knockout curves with SE bands and grouped restoration bars', async () => {
    const aq = require('arquero');
    const s = meanSe(aq.from([
      { set: 'subject', layer: 0, change: -0.5 }, { set: 'subject', layer: 0, change: -0.3 }, { set: 'subject', layer: 1, change: -0.1 },
      { set: 'prompt_last', layer: 0, change: 0.1 }, { set: 'prompt_last', layer: 1, change: 0.2 },
    ]), ['set', 'layer'], 'change');
    const fig = knockoutFigure(s, { title: 't' });
    const lines = fig.data.filter((t) => t.mode?.startsWith('lines') && t.fill !== 'toself');
    expect(lines.map((t) => t.name)).toEqual(['subject', 'prompt_last']);
    expect(lines[0].y).toEqual([-0.4, -0.1]);
    expect(fig.data.filter((t) => t.fill === 'toself')).toHaveLength(2);
    const r = meanSe(aq.from([{ pin: 'recovery', layer: 0, ie: 0.5 }, { pin: 's blocked', layer: 0, ie: 0.2 }]), ['pin', 'layer'], 'ie');
    const bars = restorationFigure(r);
    expect(bars.data.map((t) => [t.type, t.name, t.marker.color])).toEqual([['bar', 'recovery', '#6a51a3'], ['bar', 's blocked', '#cb181d']]);
    const two = restorationPanels(meanSe(aq.from([
      { token: 'subject_last', pin: 'recovery', layer: 0, ie: 0.5 }, { token: 'last', pin: 'recovery', layer: 0, ie: 0.9 },
    ]), ['token', 'pin', 'layer'], 'ie'));
    expect(two.data.map((t) => [t.xaxis, t.showlegend !== false])).toEqual([['x', true], ['x2', false]]);
  });
});

describe('behaviour on mamba-facts', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(__dirname, '..', '..', 'data', 'models', 'mamba-facts'));
  });

  it('subject spans, including subjects that start with a character split across tokens', async () => {
    for (const [prompt, subject, want] of [
      ['The capital city of Brasília is', 'Brasília', ' Brasília'], ['Ærøskøbing is a town in', 'Ærøskøbing', 'Ærøskøbing'], ['He met 東京 in the city of', '東京', '東京'],
    ]) {
      const ids = model.encode(prompt);
      expect(model.decode(ids.slice(...subjectRange(model, prompt, subject)))).toBe(want);
    }
  });

  it('exact blocking of the subject cuts p(o); the retention-only precursor leaks through the conv', async () => {
    const prompt = '<|endoftext|> Roberto Clemente plays the sport of';
    const ids = model.encode(prompt);
    const subj = subjectRange(model, prompt, 'Roberto Clemente');
    expect(model.tokenStrings(ids.slice(subj[0], subj[1])).join('')).toBe(' Roberto Clemente');
    const { id, p } = await top(model, ids);
    expect(model.tokenStrings([id])[0]).toBe(' baseball');
    const all = [...Array(model.nLayers).keys()];
    const sources = sourcePositions('subject', subj, ids.length);
    const later = [...Array(ids.length).keys()].filter((t) => t >= subj[1]);
    const [exact, retention] = await runVariants(model, [
      { ids, target: id, blocks: [{ layers: all, targets: later, sources }] },
      { ids, target: id, blocks: [{ layers: all, targets: later, sources, mode: 'retention' }] },
    ]);
    console.log(`p(baseball): clean ${p.toFixed(4)}, subject exactly blocked from every later token ${exact.toFixed(4)}, retention-only (romba's precursor) ${retention.toFixed(4)}`);
    expect(exact).toBeLessThan(0.3 * p);
    expect(retention).toBeGreaterThan(0.9 * p);
  });
});
