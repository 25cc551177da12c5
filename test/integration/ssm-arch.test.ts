/**
 * Falcon-Mamba and Mamba-2 beyond parity (parity.test.ts): their configs, Mamba-2's recurrent state
 * (step-by-step equals a full forward, resume from a cached run, state patches), generation, packed
 * mode, and the methods that run on them.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, readConfigFile } from '../../src/io/config';
import { Model } from '../../src/runtime/model';
import type { MambaState } from '../../src/runtime/forward';
import { mambaStateAt, resumeCacheNames, stackStates } from '../../src/runtime/resume';
import { generate } from '../../src/runtime/generate';
import { Corruption, kindInfo, restoredLayers, restoreStates, subjectEmbeddingStd, traceCorruption, traceKinds } from '../../src/methods/causal-tracing';
import { rome, RomeOptions } from '../../src/methods/rome/edit';
import { openCheckpoint } from '../../src/io/checkpoint';
import { expectedWeights } from '../../src/io/weights';
import { writeSafetensors } from '../../src/io/safetensors-write';
import { rng } from '../../src/runtime/generate';
import { editSite } from '../../src/methods/rome/sites';
import { pathBlockingHooks } from '../../src/methods/information-flow/path-blocking';
import type { HookFn } from '../../src/runtime/forward';
import { maxDiff } from '../support/max-diff';
import { gradients, nextTokenNll } from '../../src/runtime/grad';
import { getActName } from '../../src/runtime/act-name';
import { resolveHook } from '../../src/runtime/hooks';

const FIX = path.join(__dirname, '..', 'fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssm-arch-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const errorOf = (json: unknown): string => {
  try {
    parseConfig(json, 'm/config.json');
    return '';
  } catch (e) {
    return (e as Error).message;
  }
};

describe('configs', () => {
  it('falcon_mamba: mixer_rms_eps, with transformers\' default 1e-6; plain mamba has none', () => {
    const f = readConfigFile(path.join(FIX, 'tiny-falcon-mamba', 'config.json'));
    expect(f).toMatchObject({ arch: 'mamba', dModel: 32, nLayer: 3, dState: 8, tieEmbeddings: false, mixerRmsEps: 1e-6 });
    const base = { model_type: 'falcon_mamba', hidden_size: 32, num_hidden_layers: 2, vocab_size: 64 };
    expect(parseConfig(base, 'x')).toMatchObject({ mixerRmsEps: 1e-6 });
    expect(parseConfig({ ...base, mixer_rms_eps: 1e-3 }, 'x')).toMatchObject({ mixerRmsEps: 1e-3 });
    expect(parseConfig({ ...base, model_type: 'mamba' }, 'x')).not.toHaveProperty('mixerRmsEps');
    expect(errorOf({ ...base, mixer_rms_eps: -1 })).toMatch(/m\/config\.json.*mixer_rms_eps/);
  });

  it('mamba2: transformers 5.x ({"__float__": "Infinity"}) and 4.x (bare Infinity) dt limits; bad head layouts fail naming the field', () => {
    const c = readConfigFile(path.join(FIX, 'tiny-mamba2', 'config.json'));
    expect(c).toEqual({
      arch: 'mamba2', vocabSize: 256, dModel: 32, nLayer: 3, dInner: 64, nHeads: 4, headDim: 16, nGroups: 2, dState: 8, convKernel: 4,
      chunkSize: 4, dtLimit: [0, Infinity], eps: 1e-5, useBias: false, useConvBias: true, tieEmbeddings: false, eosTokenId: 2, padTokenId: 1,
    });
    const text = fs.readFileSync(path.join(FIX, 'tiny-mamba2', 'config.json'), 'utf8').replace(/\{\s*"__float__": "Infinity"\s*\}/, 'Infinity');
    expect(text).toMatch(/0\.0,\s*Infinity\s*\]/);
    fs.writeFileSync(path.join(tmp, 'config.json'), text);
    expect(readConfigFile(path.join(tmp, 'config.json'))).toEqual(c);
    const base = { model_type: 'mamba2', hidden_size: 32, num_hidden_layers: 2, vocab_size: 64, num_heads: 4, head_dim: 16, n_groups: 2 };
    expect(errorOf(base)).toBe('');
    expect(errorOf({ ...base, head_dim: 8 })).toMatch(/m\/config\.json.*num_heads.*4 × 8.*64/);
    expect(errorOf({ ...base, n_groups: 3 })).toMatch(/n_groups.*3.*divide.*4/);
    expect(errorOf({ ...base, time_step_limit: [0.1, 0.05] })).toMatch(/time_step_limit/);
    expect(parseConfig({ ...base, time_step_limit: [0.001, 0.1] }, 'x')).toMatchObject({ dtLimit: [0.001, 0.1] });
  });
});

describe('mamba2 dt limits', () => {
  it('Δ is clamped to time_step_limit after softplus, and only there', async () => {
    const free = await Model.load(path.join(FIX, 'tiny-mamba2'));
    const [lo, hi] = [0.05, 0.15];
    const limited = new Model({ ...free.mamba2Config, dtLimit: [lo, hi] }, (free as any).base);
    const ids = [[5, 9, 200, 31, 7, 64]]; // layer 0: its input does not depend on the limits
    const a = (await free.runWithCache(ids, ['layers.0.mixer.dt'])).cache.get('layers.0.mixer.dt').data;
    const b = (await limited.runWithCache(ids, ['layers.0.mixer.dt'])).cache.get('layers.0.mixer.dt').data;
    expect(Math.min(...a)).toBeLessThan(lo); // both bounds bite on this prompt
    expect(Math.max(...a)).toBeGreaterThan(hi);
    expect(maxDiff(b, a.map((v) => Math.min(hi, Math.max(lo, v))))).toBeLessThan(1e-7);
  });
});

for (const name of ['tiny-mamba2', 'tiny-mamba2-tied']) {
  describe(`${name}: recurrent state`, () => {
    let model: Model;
    const ids = [17, 3, 250, 41, 9, 88, 120, 5, 61, 33];
    beforeAll(async () => {
      model = await Model.load(path.join(FIX, name));
    });

    it('step API: a prefix with returnState, then one token at a time, gives the full-prompt logits and state', async () => {
      const full = await model.logits([ids]); // [1,T,V]
      const V = model.config.vocabSize;
      const { dInner: E, dState: N, convKernel: K, nGroups: G } = model.mamba2Config;
      const first = await model.run([ids.slice(0, 4)], { returnState: true });
      expect(first.state!.ssm[0].shape).toEqual([1, E, N]);
      expect(first.state!.conv[0].shape).toEqual([1, K - 1, E + 2 * G * N]);
      expect(maxDiff(first.logits!.data, full.data.subarray(0, 4 * V))).toBeLessThan(1e-4);
      let state: MambaState = first.state!;
      for (let t = 4; t < ids.length; t++) {
        const step = await model.run([[ids[t]]], { state, returnState: true });
        expect(maxDiff(step.logits!.data, full.data.subarray(t * V, (t + 1) * V)), `position ${t}`).toBeLessThan(1e-4);
        state = step.state!;
      }
      const whole = await model.run([ids], { returnState: true, logits: 'none' });
      for (let l = 0; l < model.nLayers; l++) {
        expect(maxDiff(state.ssm[l].data, whole.state!.ssm[l].data)).toBeLessThan(1e-5);
        expect(maxDiff(state.conv[l].data, whole.state!.conv[l].data)).toBeLessThan(1e-5);
      }
      // Without the carried state the suffix alone is different (the state matters).
      const alone = await model.run([[ids[ids.length - 1]]]);
      expect(maxDiff(alone.logits!.data, full.data.subarray((ids.length - 1) * V))).toBeGreaterThan(1e-2);
    });

    it('mixer.state [B,T,H,Dh,N] after token t is the carried state; resuming a cached run at (layer, position) equals the full run', async () => {
      const cached = await model.runWithCache([ids], resumeCacheNames(model));
      const { nHeads: H, headDim: P, dState: N } = model.mamba2Config;
      expect(cached.cache.get('layers.2.mixer.state').shape).toEqual([1, ids.length, H, P, N]);
      const at = 6;
      const prefix = await model.run([ids.slice(0, at)], { returnState: true, logits: 'none' });
      for (let l = 0; l < model.nLayers; l++) {
        const s = mambaStateAt(model, cached.cache, l, at);
        expect(maxDiff(s.ssm.data, prefix.state!.ssm[l].data)).toBeLessThan(1e-5);
        expect(maxDiff(s.conv.data, prefix.state!.conv[l].data)).toBeLessThan(1e-5);
      }
      const state = stackStates(1, 0, model.nLayers, (l) => mambaStateAt(model, cached.cache, l, at));
      const resumed = await model.run([ids.slice(at)], { state });
      const full = await model.logits([ids]);
      expect(maxDiff(resumed.logits!.data, full.data.subarray(at * model.config.vocabSize))).toBeLessThan(1e-4);
    });

    it('a state patch with the state of another prefix equals running that prefix', async () => {
      const other = [99, 14, 2, 230, 71, 8];
      const at = 5; // replace the state after token 5 of layer 1 with the other prompt's
      const theirs = await model.run([other], { returnState: true, logits: 'none' });
      const patched = await model.run([ids], {
        statePatches: [{ layer: 1, position: at, ssm: () => theirs.state!.ssm[1], conv: () => theirs.state!.conv[1] }],
      });
      // Layers 0 and 2 still see ids' own stream, so compare with a hand-made two-stage run of layer 1 only.
      const plain = await model.logits([ids]);
      const V = model.config.vocabSize;
      expect(maxDiff(patched.logits!.data.subarray(0, (at + 1) * V), plain.data.subarray(0, (at + 1) * V))).toBeLessThan(1e-6);
      expect(maxDiff(patched.logits!.data.subarray((at + 1) * V), plain.data.subarray((at + 1) * V))).toBeGreaterThan(1e-3);
      const self = await model.run([ids.slice(0, at + 1)], { returnState: true, logits: 'none' });
      const same = await model.run([ids], { statePatches: [{ layer: 1, position: at, ssm: () => self.state!.ssm[1], conv: () => self.state!.conv[1] }] });
      expect(maxDiff(same.logits!.data, plain.data)).toBeLessThan(1e-5);
    });

    it('generation (greedy, through the carried state) equals re-running the whole prefix each step', async () => {
      const prompt = ids.slice(0, 5);
      const [out] = (await generate(model, [prompt], { maxNewTokens: 6, stopAtEos: false })).tokens;
      expect(out).toHaveLength(6);
      const seq = [...prompt];
      for (let k = 0; k < 6; k++) {
        const l = (await model.logits([seq], { last: true })).data;
        seq.push(l.indexOf(Math.max(...l)));
      }
      expect(out).toEqual(seq.slice(5));
    });

    it('packed mode gives the float32 model\'s logits', async () => {
      const packed = await Model.load(path.join(FIX, name), { packed: true });
      const rows = [ids, ids.slice(0, 7).reverse()];
      const a = await packed.logits(rows);
      const b = await model.logits(rows);
      expect(maxDiff(a.data, b.data)).toBeLessThan(1e-4);
      await packed.releasePacked();
    });
  });
}

describe('methods on tiny-mamba2', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(FIX, 'tiny-mamba2'));
  });

  it('causal tracing: the block\'s states as kinds; every cell equals restoring it in a plain hooked run', async () => {
    expect(traceKinds('mamba2')).toEqual(['residual', 'ssm', 'gate', 'out']);
    const clean = [7, 71, 138, 80, 109, 92, 176];
    const c: Corruption = { strategy: 'alt-subject', clean, tokens: clean.map(String), subjectRange: [1, 3], span: [1, 3], runs: [{ ids: [7, 200, 12, 80, 109, 92, 176] }], subject: 's', prompt: 'p', altSubject: 's2' };
    const window = 2;
    const results = await traceCorruption(model, c, { window, layers: [0, 1, 2], batchSize: 5 });
    expect(results.map((r) => r.kind)).toEqual(['residual', 'ssm', 'gate', 'out']);
    let moved = 0;
    for (const r of results) {
      for (const [li, layer] of r.layers.entries()) {
        for (const pos of [0, 1, 2, 6]) {
          const cells = restoredLayers(kindInfo('mamba2', r.kind), layer, window, model.nLayers).map((l) => ({ layer: l, pos }));
          const ref = await restoreStates(model, c, r.kind, cells, r.answerId);
          expect(r.p[pos][li]).toBeCloseTo(ref.p, 5);
          if (Math.abs(ref.p - r.low) > 1e-4) moved++;
        }
      }
    }
    expect(moved, 'some restoration changes the probability').toBeGreaterThan(0);
  });

  it('exact path blocking through conv + SSD: with every earlier token blocked, s_t at layer 0 depends on token t alone', async () => {
    const [a, b] = [[12, 200, 31, 77, 5], [99, 3, 140, 8, 5]]; // only the last token is shared
    const all = (T: number) => [{ layers: [0], targets: 'last' as const, sources: [...Array(T - 1).keys()] }];
    const s = async (ids: number[], hooks: Array<[string, HookFn]>) => (await model.run([ids], { hooks, cache: ['layers.0.mixer.ssm_out'], logits: 'none' })).cache.get('layers.0.mixer.ssm_out');
    const E = model.mamba2Config.dInner;
    const last = (t: { data: Float32Array }) => t.data.subarray(4 * E, 5 * E);
    const [pa, pb] = [await s(a, []), await s(b, [])];
    expect(maxDiff(last(pa), last(pb)), 'the prefixes matter unblocked').toBeGreaterThan(1e-3);
    const [ba, bb] = [await s(a, pathBlockingHooks(model, all(5))), await s(b, pathBlockingHooks(model, all(5)))];
    expect(maxDiff(last(ba), last(bb))).toBeLessThan(1e-6);
    expect(maxDiff(ba.data.subarray(0, 4 * E), pa.data.subarray(0, 4 * E))).toBe(0); // other positions untouched
    // Blocking the slots too (exact+slots): the target's output equals running its token alone.
    const slots = (T: number) => all(T).map((x) => ({ ...x, mode: 'exact+slots' as const }));
    const alone = await s([5], []);
    expect(maxDiff(last(await s(a, pathBlockingHooks(model, slots(5)))), alone.data)).toBeLessThan(1e-5);
  });

  it('ROME sites: W_o is out_proj (key: the gated-norm output), W_a / W_g are the x / z rows of in_proj', () => {
    const E = model.mamba2Config.dInner;
    expect(editSite(model, 1)).toMatchObject({ matrix: 'W_o', weight: 'layers.1.mixer.out_proj.weight', keyHook: 'layers.1.mixer.out_proj_in', valueHook: 'layers.1.mixer.out', keyDim: E });
    expect(editSite(model, 1, 'W_a')).toMatchObject({ rows: [E, 2 * E], valueHook: 'layers.1.mixer.x', keyHook: 'layers.1.norm' });
    expect(editSite(model, 1, 'W_g')).toMatchObject({ rows: [0, E], valueHook: 'layers.1.mixer.z' });
  });

  it('the in_proj rows editSite names are the rows that produce its value hook', async () => {
    const ids = [[4, 77, 19, 240]];
    const r = await model.runWithCache(ids, ['layers.1.norm', 'layers.1.mixer.x', 'layers.1.mixer.z']);
    const W = model.weight('layers.1.mixer.in_proj.weight'); // [rows, D]
    const n = r.cache.get('layers.1.norm'); // [1,T,D]
    const D = model.config.dModel;
    for (const m of ['W_a', 'W_g'] as const) {
      const s = editSite(model, 1, m);
      const v = r.cache.get(s.valueHook); // [1,T,E]
      const E = s.rows[1] - s.rows[0];
      const t = 2;
      const want = Array.from({ length: E }, (_, e) => {
        let acc = 0;
        for (let d = 0; d < D; d++) acc += W.data[(s.rows[0] + e) * D + d] * n.data[t * D + d];
        return acc;
      });
      expect(maxDiff(v.data.subarray(t * E, (t + 1) * E), want), m).toBeLessThan(1e-5);
    }
  });
});


/**
 * tiny-mamba2's blocks with the demo models' 8,192-token tokenizer and seeded random embeddings
 * (methods that take text need a tokenizer; the parity fixtures have none).
 */
function tokenizedMamba2(): string {
  const dir = path.join(tmp, 'mamba2-tok');
  const src = path.join(FIX, 'tiny-mamba2');
  const V = 8192;
  const cfg = { ...JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')), vocab_size: V, eos_token_id: 0, pad_token_id: 1 };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  fs.copyFileSync(path.join(__dirname, '..', '..', 'data', 'models', 'mamba-facts', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const ckpt = openCheckpoint(src);
  const random = rng(7);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, shape] of expectedWeights(parseConfig(cfg, 'mamba2-tok'))) {
    const stored = name === 'lm_head.weight' ? name : `backbone.${name}`;
    const data = shape[0] === V ? Float32Array.from({ length: V * shape[1] }, () => (random() - 0.5) * 0.6) : ckpt.readFloat32(name);
    tensors[stored] = { dtype: 'F32', shape, data };
  }
  ckpt.close();
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

describe('text methods on Mamba-2 (tiny-mamba2 blocks, demo tokenizer)', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(tokenizedMamba2());
  });

  it('ROME at out_proj and at in_proj\'s z rows: a rank-one update of exactly the site\'s rows; the original is untouched', async () => {
    const prompt = 'The Space Needle is located in the city of';
    const FAST: RomeOptions = { templates: { lengths: [[5, 2]] }, steps: 12, stats: { samples: 3000, maxLength: 128, cache: false, progress: false } };
    const before = (await model.logits(prompt, { last: true })).data.slice();
    for (const matrix of ['W_o', 'W_g'] as const) {
      const e = await rome(model, { prompt, subject: 'The Space Needle', target: 'Paris' }, { ...FAST, layer: 1, matrix });
      expect(e.site.weight).toBe(matrix === 'W_o' ? 'layers.1.mixer.out_proj.weight' : 'layers.1.mixer.in_proj.weight');
      // The edit is W + w uᵀ on the site's rows. (The random tiny model's v* loss hardly moves in 12 or 40
      // steps, for Mamba-1 built the same way too, so ROME's efficacy is checked on the demo models, not here.)
      const tr = e.diagnostics.trace;
      expect(tr.length).toBe(12);
      expect(tr.every((x) => Number.isFinite(x.nll))).toBe(true);
      const W0 = model.weight(e.site.weight);
      const W1 = e.model.weight(e.site.weight);
      const D = model.config.dModel;
      const changedRows = new Set<number>();
      for (let i = 0; i < W0.size; i++) if (W0.data[i] !== W1.data[i]) changedRows.add(Math.floor(i / (matrix === 'W_o' ? model.mamba2Config.dInner : D)));
      const [r0, r1] = e.site.rows;
      expect([...changedRows].every((r) => r >= r0 && r < r1), `${matrix} edits only rows ${r0}..${r1}`).toBe(true);
      expect(changedRows.size).toBeGreaterThan(0);
      const cols = W0.shape[1];
      const { u, w } = e.delta;
      let worst = 0;
      for (let r = r0; r < r1; r++) for (let c = 0; c < cols; c++) worst = Math.max(worst, Math.abs(W1.data[r * cols + c] - W0.data[r * cols + c] - w[r - r0] * u[c]));
      expect(worst).toBeLessThan(1e-6);
    }
    expect(maxDiff((await model.logits(prompt, { last: true })).data, before)).toBe(0);
  });

  it('noise corruption uses the Mamba-2 embedding matrix', () => {
    expect(subjectEmbeddingStd(model, ['Paris', 'The Space Needle'])).toBeGreaterThan(0.1); // U(±0.3): std ≈ 0.17
  });
});

describe('getActName knows Mamba-2 points', () => {
  it('mixer-only names of Mamba-2 resolve, and resolve on the model', () => {
    expect(getActName('conv_in', 2, 'mixer')).toBe('layers.2.mixer.conv_in');
    expect(getActName('dt_in', 0)).toBe('layers.0.mixer.dt_in');
    expect(resolveHook(getActName('dt_in', 0), 'mamba2', 3).name).toBe('layers.0.mixer.dt_in');
  });
});

describe('Mamba-2: the native and the ONNX scans agree', () => {
  it('logits, per-head states and gradients (in_proj, A_log) on tiny-mamba2-tied (4 groups)', async () => {
    const dir = path.join(FIX, 'tiny-mamba2-tied');
    const [native, onnx] = [await Model.load(dir), await Model.load(dir, { nativeScan: false })];
    expect(onnx.nativeScan).toBe(false);
    if (!native.nativeScan) console.warn('native selective scan not built: only the ONNX scan was checked');
    const rows = [[5, 17, 200, 3, 99, 41, 8], [250, 1, 60, 77, 12, 9, 31]];
    const [a, b] = await Promise.all([native, onnx].map((m) => m.runWithCache(rows, ['layers.1.mixer.state'])));
    expect(maxDiff(a.logits!.data, b.logits!.data)).toBeLessThan(1e-5);
    expect(maxDiff(a.cache.get('layers.1.mixer.state').data, b.cache.get('layers.1.mixer.state').data)).toBeLessThan(1e-5);
    const wrt = ['layers.1.mixer.in_proj.weight', 'layers.1.mixer.A_log', 'layers.0.mixer.dt'];
    const [ga, gb] = await Promise.all([native, onnx].map((m) => gradients(m, rows, nextTokenNll, wrt)));
    for (const w of wrt) {
      const scale = Math.max(...gb.grads.get(w)!.data.map(Math.abs));
      expect(scale, w).toBeGreaterThan(1e-6);
      expect(maxDiff(ga.grads.get(w)!.data, gb.grads.get(w)!.data) / scale, w).toBeLessThan(1e-4);
    }
  });
});
