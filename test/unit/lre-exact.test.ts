// LRE on models whose map from h to z is exactly affine, built from the tiny fixtures and written
// as real checkpoints (writeSafetensors + config.json, loaded with Model.load).
//
// What makes h ↦ z affine, and why it is exact:
// - The norms: RMSNorm/LayerNorm divide by sqrt(mean(h²) + eps). With eps = 1e8 and mean(h²) < 4,
//   float32 rounds mean(h²) + eps to eps itself, so the forward pass computes h·w/1e4 (LayerNorm:
//   (h − mean h)·w/1e4 + b): linear, bit for bit. (The norm weights are scaled by 1e4 to compensate.)
// - Mamba's mixer (layer 1): the x branch splits into "signal" channels (conv bias 20, so SiLU's
//   sigmoid is 1 in float32 and SiLU is the identity) and "constant" channels (conv weights 0, bias 1).
//   x_proj reads only the constant channels, so Δ, B, C (and the SSM's decay) are constants and the
//   scan is a fixed linear filter over positions; the gate z has zero weights and bias 2, so
//   g = SiLU(2) is a constant. The block is then an affine map that mixes positions (conv + SSM).
// - GPT-NeoX layer 1: q and k have zero weights and biases, so attention is uniform over the causal
//   window (a linear average of positions); the MLP is zeroed.
// - Every other block is zeroed (out_proj / dense and MLP down-projection 0), so stream 1 is the
//   embedding and z is the model's final residual: prompts that differ only at the subject token share
//   b, and decoding z is the model's own prediction.
// The expected Jacobian is derived from the weights below, independently of the engine.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import { jacobian } from '../../src/runtime/grad';
import { writeSafetensors } from '../../src/io';
import { encodePrompts, EncodedPrompt, streamAt, streamLast } from '../../src/methods/lre/encode';
import { streamJacobian, firstOrderApprox } from '../../src/methods/lre/jacobian';
import { estimateFromEncoded } from '../../src/methods/lre/estimator';
import { causality, faithfulness, modelPredictions } from '../../src/methods/lre/metrics';
import { hStream, zStream } from '../../src/methods/lre/sites';

const FIX = path.resolve(__dirname, '..', 'fixtures');
let tmp: string;
beforeAll(() => void (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lre-linear-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const silu = (x: number) => x / (1 + Math.exp(-x));
const softplus = (x: number) => Math.log1p(Math.exp(x));

/** Write a checkpoint (HF names = prefix + canonical) with a patched config.json; load it. */
async function writeModel(name: string, src: string, prefix: string, patch: Record<string, unknown>, weights: Map<string, Tensor>): Promise<Model> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const cfg = { ...JSON.parse(fs.readFileSync(path.join(FIX, src, 'config.json'), 'utf8')), ...patch };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [n, t] of weights) tensors[n === 'embed_out.weight' || n === 'lm_head.weight' ? n : prefix + n] = { dtype: 'F32', shape: t.shape, data: t.data };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  return Model.load(dir);
}

/** Token ids used as subjects below; their embedding rows are scaled up (RMS stays < 2, so the norms stay linear). */
const SUBJECTS = [40, 41, 42, 100, 130, 160, 190, 200, 201, 220, 260, 290, 300, 301, 330, 450, 451, 7, 8];
function boostRows(emb: Tensor, rows: number[], s: number): void {
  const D = emb.shape[1];
  for (const r of rows) for (let i = r * D; i < (r + 1) * D; i++) emb.data[i] *= s;
}

function zeros(t: Tensor): Tensor {
  return Tensor.zeros(t.shape);
}
function scaled(t: Tensor, s: number): Tensor {
  return new Tensor(Float32Array.from(t.data, (v) => v * s), [...t.shape]);
}
function baseWeights(m: Model): Map<string, Tensor> {
  return new Map(m.weightNames().map((n) => [n, m.weight(n).clone()]));
}

/** Prompts of length T that differ only at position p (single-token "subjects"). */
function variants(ids: number[], p: number, subjects: number[]): EncodedPromptSpec[] {
  return subjects.map((s) => ({ text: '', subject: `<${s}>`, ids: ids.map((x, i) => (i === p ? s : x)), subjectLast: p }));
}
type EncodedPromptSpec = { text: string; subject: string; ids: number[]; subjectLast: number };

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

describe('LRE on an exactly linear Mamba', () => {
  let model: Model;
  let expectedJ: (p: number, T: number) => Float64Array;
  const ids = [5, 17, 33, 60, 81, 9, 120]; // T = 7
  const p = 3;

  beforeAll(async () => {
    const src = await Model.load(path.join(FIX, 'tiny-mamba'));
    const { dModel: D, dInner: E, dState: N, dtRank: R, convKernel: K, nLayer: L } = src.mambaConfig;
    const w = baseWeights(src);
    const half = E / 2; // channels < half carry the signal, the rest are constant
    for (let l = 0; l < L; l++) {
      w.set(`layers.${l}.mixer.in_proj.bias`, Tensor.zeros([2 * E]));
      w.set(`layers.${l}.mixer.out_proj.bias`, Tensor.zeros([D]));
      w.set(`layers.${l}.norm.weight`, scaled(w.get(`layers.${l}.norm.weight`)!, 1e4));
      if (l !== 1) w.set(`layers.${l}.mixer.out_proj.weight`, zeros(w.get(`layers.${l}.mixer.out_proj.weight`)!));
    }
    w.set('norm_f.weight', scaled(w.get('norm_f.weight')!, 1e4));
    const inProj = w.get('layers.1.mixer.in_proj.weight')!; // [2E,D]
    for (let i = 0; i < E * D; i++) inProj.data[i] *= 10; // W_a: signal of order 1
    inProj.data.fill(0, E * D); // W_g = 0
    w.get('layers.1.mixer.in_proj.bias')!.data.fill(2, E); // gate z = 2
    const conv = w.get('layers.1.mixer.conv1d.weight')!; // [E,1,K]
    conv.data.fill(0, half * K);
    const convB = w.get('layers.1.mixer.conv1d.bias')!;
    for (let c = 0; c < E; c++) convB.data[c] = c < half ? 20 : 1;
    const xProj = w.get('layers.1.mixer.x_proj.weight')!; // [R+2N,E]
    for (let r = 0; r < R + 2 * N; r++) xProj.data.fill(0, r * E, r * E + half);
    // Signal channels come in pairs c, c + E/4 with the same SSM (dt row, A row, D) and negated out_proj
    // columns: the conv bias (20) passes both SSMs alike and cancels in o; the signals (own conv taps and
    // W_a rows) do not, so J keeps full rank.
    const q = half / 2;
    const outProj = w.get('layers.1.mixer.out_proj.weight')!; // [D,E]
    const dtProj = w.get('layers.1.mixer.dt_proj.weight')!; // [E,R]
    const dtBias = w.get('layers.1.mixer.dt_proj.bias')!;
    const aLog = w.get('layers.1.mixer.A_log')!; // [E,N]
    const dSkip = w.get('layers.1.mixer.D')!;
    for (let c = 0; c < q; c++) {
      const c2 = c + q;
      for (let i = 0; i < D; i++) outProj.data[i * E + c2] = -outProj.data[i * E + c];
      for (let r = 0; r < R; r++) dtProj.data[c2 * R + r] = dtProj.data[c * R + r];
      dtBias.data[c2] = dtBias.data[c];
      for (let n = 0; n < N; n++) aLog.data[c2 * N + n] = aLog.data[c * N + n];
      dSkip.data[c2] = dSkip.data[c];
    }
    for (let i = 0; i < D; i++) outProj.data.fill(0, i * E + half, (i + 1) * E); // constant channels only feed x_proj
    model = await writeModel('mamba-linear', 'tiny-mamba', 'backbone.', { layer_norm_epsilon: 1e8, use_bias: true }, w);

    // The Jacobian from the weights (float64).
    const wn = src.weight('layers.1.norm.weight').data;
    const Wa = inProj.data; // rows 0..E-1 (already ×10)
    const Wout = w.get('layers.1.mixer.out_proj.weight')!.data; // [D,E]
    const dtW = w.get('layers.1.mixer.dt_proj.weight')!.data; // [E,R]
    const dtB = w.get('layers.1.mixer.dt_proj.bias')!.data;
    const Alog = w.get('layers.1.mixer.A_log')!.data; // [E,N]
    const Dskip = w.get('layers.1.mixer.D')!.data;
    const uc = silu(1);
    const xdbl = Array.from({ length: R + 2 * N }, (_, r) => {
      let s = 0;
      for (let c = half; c < E; c++) s += xProj.data[r * E + c] * uc;
      return s;
    });
    const delta = xdbl.slice(0, R);
    const Bv = xdbl.slice(R, R + N);
    const Cv = xdbl.slice(R + N);
    const dt = Array.from({ length: E }, (_, c) => softplus(delta.reduce((s, d, r) => s + dtW[c * R + r] * d, dtB[c])));
    const kern = (c: number, d: number) => {
      let s = 0;
      for (let n = 0; n < N; n++) s += Math.pow(Math.exp(-dt[c] * Math.exp(Alog[c * N + n])), d) * Bv[n] * Cv[n];
      return dt[c] * s;
    };
    const g = silu(2);
    expectedJ = (pp, T) => {
      const J = new Float64Array(D * D);
      if (pp === T - 1) for (let i = 0; i < D; i++) J[i * D + i] = 1;
      for (let c = 0; c < half; c++) {
        let coef = 0;
        for (let j = pp; j <= Math.min(pp + K - 1, T - 1); j++) {
          coef += (kern(c, T - 1 - j) + (j === T - 1 ? Dskip[c] : 0)) * conv.data[c * K + (pp - j + K - 1)];
        }
        coef *= g;
        for (let i = 0; i < D; i++) {
          const wo = Wout[i * E + c] * coef;
          for (let k = 0; k < D; k++) J[i * D + k] += wo * Wa[c * D + k] * wn[k];
        }
      }
      return J;
    };
  });

  it('the LRE Jacobian (resumed, batched reverse mode) and the engine jacobian() equal the known matrix', async () => {
    const [enc] = await encodePrompts(model, variants(ids, p, [40]));
    const J = await streamJacobian(model, enc, hStream(model, 1), zStream(model));
    const known = expectedJ(p, ids.length);
    expect(maxRel(J, known)).toBeLessThan(1e-4);
    const engine = await jacobian(model, [enc.ids], { hook: 'layers.1.resid_pre', position: p }, { hook: 'layers.3.resid_pre', position: ids.length - 1 });
    expect(maxRel(engine.data, known)).toBeLessThan(1e-4);
    // h at the last token: J = I + the SSM's same-position term.
    const last = await encodePrompts(model, variants(ids, ids.length - 1, [40]));
    expect(maxRel(await streamJacobian(model, last[0], 1, 3), expectedJ(ids.length - 1, ids.length))).toBeLessThan(1e-4);
  });

  it('b = z − J h, the LRE reproduces z exactly, faithfulness equals the model prediction, causality is 1 at the rank of J', async () => {
    const train = await encodePrompts(model, variants(ids, p, [40, 41, 42]));
    const a = await firstOrderApprox(model, train[0], 1, 3);
    const Jh = Array.from({ length: 64 }, (_, i) => a.J.slice(i * 64, (i + 1) * 64).reduce((s, v, k) => s + v * a.h[k], 0));
    expect(maxRel(Jh.map((v, i) => v + a.b[i]), a.z)).toBeLessThan(1e-5);
    const lre = (await estimateFromEncoded(model, train, [1])).get(1)!;
    expect(maxRel(lre.J, expectedJ(p, ids.length))).toBeLessThan(1e-4);

    const tests = await encodePrompts(model, variants(ids, p, [200, 201, 300, 301, 450, 451, 7, 8]));
    const own = modelPredictions(model, tests, 1).map((x) => x[0].token);
    const cases = tests.map((t, i) => ({ prompt: t, object: own[i] }));
    const zhat = lre.apply(tests.map((t) => streamAt(model, t, 1)));
    tests.forEach((t, i) => expect(maxRel(zhat.data.subarray(i * 64, (i + 1) * 64), streamLast(model, t, 3))).toBeLessThan(1e-4));
    const f = await faithfulness(model, lre, cases, { betas: [1], k: 1 });
    expect(f.recall[0]).toBe(1);
    // β = 0 decodes b alone: no longer subject-specific.
    const f0 = await faithfulness(model, lre, cases, { betas: [0], k: 1 });
    expect(f0.recall[0]).toBeLessThan(1);

    const distinct = cases.filter((c, i) => cases.findIndex((d) => d.object === c.object) === i);
    expect(distinct.length).toBeGreaterThan(2);
    const targets = distinct.map((_, i) => (i + 1) % distinct.length);
    // J has rank 32 (one output direction per channel pair); the rank-32 pseudo-inverse moves z exactly
    // onto z′, while rank 64 also inverts float32 noise (σ ≈ 1e-7): the reason the rank is searched.
    const S = lre.svd().S;
    expect(S[31] / S[0]).toBeGreaterThan(1e-3);
    expect(S[32] / S[0]).toBeLessThan(1e-5);
    const c = await causality(model, lre, distinct, targets, { ranks: [0, 32, 64] });
    expect(c.byRank.map((r) => r.efficacy).slice(0, 2)).toEqual([0, 1]);
    expect(c.rank).toBe(32);
  });
});

describe('LRE on an exactly linear GPT-NeoX', () => {
  let model: Model;
  let expectedJ: (p: number, T: number) => Float64Array;
  const ids = [3, 70, 11, 90, 250, 31]; // T = 6
  const p = 2;

  beforeAll(async () => {
    const src = await Model.load(path.join(FIX, 'tiny-neox'));
    const { dModel: D, nLayer: L, nHead: H } = src.neoxConfig;
    const Dh = D / H;
    const w = baseWeights(src);
    for (let l = 0; l < L; l++) {
      for (const ln of ['input_layernorm', 'post_attention_layernorm']) w.set(`layers.${l}.${ln}.weight`, scaled(w.get(`layers.${l}.${ln}.weight`)!, 1e4));
      for (const n of ['mlp.dense_4h_to_h.weight', 'mlp.dense_4h_to_h.bias']) w.set(`layers.${l}.${n}`, zeros(w.get(`layers.${l}.${n}`)!));
      if (l !== 1) for (const n of ['attention.dense.weight', 'attention.dense.bias']) w.set(`layers.${l}.${n}`, zeros(w.get(`layers.${l}.${n}`)!));
    }
    w.set('final_layer_norm.weight', scaled(w.get('final_layer_norm.weight')!, 1e4));
    boostRows(w.get('embed_in.weight')!, SUBJECTS, 10);
    const qkv = w.get('layers.1.attention.query_key_value.weight')!; // [3D,D], per head [q;k;v]
    const qkvB = w.get('layers.1.attention.query_key_value.bias')!;
    for (let h = 0; h < H; h++) {
      qkv.data.fill(0, h * 3 * Dh * D, (h * 3 * Dh + 2 * Dh) * D); // q, k rows
      qkvB.data.fill(0, h * 3 * Dh, h * 3 * Dh + 2 * Dh);
    }
    model = await writeModel('neox-linear', 'tiny-neox', 'gpt_neox.', { layer_norm_eps: 1e8 }, w);

    const w1 = src.weight('layers.1.input_layernorm.weight').data;
    const Wo = w.get('layers.1.attention.dense.weight')!.data; // [D,D]
    const Wv = new Float64Array(D * D); // rows: head-major value dims
    for (let h = 0; h < H; h++) for (let i = 0; i < Dh; i++) for (let k = 0; k < D; k++) Wv[(h * Dh + i) * D + k] = qkv.data[(h * 3 * Dh + 2 * Dh + i) * D + k];
    expectedJ = (pp, T) => {
      // (1/T) W_O W_V diag(w1) (I − 11ᵀ/D), plus I at the same position.
      const M = new Float64Array(D * D);
      for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) {
        let s = 0;
        for (let k = 0; k < D; k++) s += Wo[i * D + k] * Wv[k * D + j];
        M[i * D + j] = (s * w1[j]) / T;
      }
      const J = new Float64Array(D * D);
      for (let i = 0; i < D; i++) {
        let rowMean = 0;
        for (let j = 0; j < D; j++) rowMean += M[i * D + j] / D;
        for (let j = 0; j < D; j++) J[i * D + j] = M[i * D + j] - rowMean + (pp === T - 1 && i === j ? 1 : 0);
      }
      return J;
    };
  });

  it('the Jacobian from layer 0 (stream 1) to the last layer equals the known matrix, and b reproduces z', async () => {
    const [enc] = await encodePrompts(model, variants(ids, p, [40]));
    const J = await streamJacobian(model, enc, hStream(model, 0), zStream(model), { chunk: 32 });
    expect(maxRel(J, expectedJ(p, ids.length))).toBeLessThan(1e-4);
    const engine = await jacobian(model, [enc.ids], { hook: 'layers.0.resid_post', position: p }, { hook: 'layers.3.resid_post', position: ids.length - 1 });
    expect(maxRel(engine.data, expectedJ(p, ids.length))).toBeLessThan(1e-4);
    const a = await firstOrderApprox(model, enc, 1, 4, { chunk: 32 });
    const D = 64;
    const zhat = Array.from({ length: D }, (_, i) => a.J.slice(i * D, (i + 1) * D).reduce((s, v, k) => s + v * a.h[k], a.b[i]));
    expect(maxRel(zhat, a.z)).toBeLessThan(1e-5);
  });

  it('faithfulness equals the model prediction and causality is 1 at full rank', async () => {
    const train = await encodePrompts(model, variants(ids, p, [40, 41]));
    const lre = (await estimateFromEncoded(model, train, [0])).get(0)!;
    const tests: EncodedPrompt[] = await encodePrompts(model, variants(ids, p, [100, 130, 160, 190, 220, 260, 290, 330]));
    const own = modelPredictions(model, tests, 1).map((x) => x[0].token);
    const cases = tests.map((t, i) => ({ prompt: t, object: own[i] }));
    const f = await faithfulness(model, lre, cases, { betas: [0, 1, 2], k: 1 });
    expect(f.beta).toBe(1);
    expect(f.recall[0]).toBe(1);
    const distinct = cases.filter((c, i) => cases.findIndex((d) => d.object === c.object) === i);
    expect(distinct.length).toBeGreaterThan(2);
    // J has rank D − 1 here (LayerNorm removes the mean), so the full-rank pseudo-inverse is rank 63.
    const c = await causality(model, lre, distinct, distinct.map((_, i) => (i + 1) % distinct.length), { ranks: [0, 63] });
    expect(c.byRank[1].efficacy).toBe(1);
  });
});
