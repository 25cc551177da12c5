/**
 * ROME's second-moment statistics: the streamed ONNX accumulation equals the direct formula
 * (1/n) Σ k kᵀ, the disk cache round-trips and is keyed by the weights the keys depend on, and the
 * Cholesky solve inverts C.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { makeBatch } from '../../src/runtime/batch';
import { SafetensorsFile } from '../../src/io/safetensors';
import { clearStatsMemory, sampleTokens, secondMoment, secondMoments } from '../../src/methods/rome/stats';
import { textCorpus, wikitextCorpus, detokenizeWikitext } from '../../src/methods/rome/corpus';
import { keyFingerprint } from '../../src/methods/rome/stats-cache';
import { cholesky, choleskySolve } from '../../src/methods/rome/linalg';
import { choleskyBlocked } from '../../src/methods/rome/blocked';
import { editSite } from '../../src/methods/rome/sites';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');
const TEXT = [
  'The Space Needle is an observation tower in Seattle, Washington. It was built for the 1962 World\'s Fair.',
  'Paris is the capital and most populous city of France.',
  'The quick brown fox jumps over the lazy dog, and then it runs away into the forest.',
  'Mamba is a state space model. Its selective scan keeps a recurrent state per channel.',
].join('\n\n');

describe('second moments on mamba-facts', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.join(MODELS, 'mamba-facts'));
  });

  it('streamed C equals (1/n) Σ k kᵀ computed naively, for two sites in one pass', async () => {
    const corpus = textCorpus(TEXT, { name: 'tiny' });
    const sites = [editSite(model, 1, 'W_o'), editSite(model, 2, 'W_a')];
    const samples = 60;
    const [c1, c2] = await secondMoments(model, sites, { corpus, samples, maxLength: 20, batchTokens: 64, cache: false, progress: false });
    const docs = sampleTokens(model, corpus, samples, 20);
    expect(docs.reduce((s, d) => s + d.length, 0)).toBe(samples);
    for (const [site, c] of [[sites[0], c1], [sites[1], c2]] as const) {
      const d = site.keyDim;
      const sum = new Float64Array(d * d);
      for (const doc of docs) {
        const act = (await model.run(makeBatch([doc], model.config.vocabSize, model.padId), { untilLayer: site.layer + 1, cache: [site.keyHook], logits: 'none' })).cache.get(site.keyHook); // [1,T,d]
        for (let t = 0; t < doc.length; t++) {
          const k = act.data.subarray(t * d, (t + 1) * d);
          for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) sum[i * d + j] += k[i] * k[j];
        }
      }
      expect(c.count).toBe(samples);
      expect(c.dim).toBe(d);
      let maxErr = 0, maxAbs = 0;
      for (let i = 0; i < d * d; i++) {
        maxErr = Math.max(maxErr, Math.abs(c.mom2[i] - sum[i] / samples));
        maxAbs = Math.max(maxAbs, Math.abs(sum[i] / samples));
      }
      expect(maxErr).toBeLessThan(1e-5 * maxAbs);
    }
  });

  it('caches on disk with self-describing metadata, keyed by the weights the keys depend on', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-stats-'));
    try {
      clearStatsMemory();
      const corpus = textCorpus(TEXT, { name: 'tiny' });
      const site = editSite(model, 1, 'W_o');
      const opts = { corpus, samples: 40, maxLength: 16, cache: dir, progress: false };
      const a = await secondMoment(model, site, opts);
      expect(a.fromCache).toBe(false);
      expect(a.file && fs.existsSync(a.file)).toBe(true);
      const f = SafetensorsFile.open(a.file!);
      expect(f.metadata.key_hook).toBe('layers.1.mixer.out_proj_in');
      expect(f.metadata.samples).toBe('40');
      expect(f.metadata.fingerprint).toBe(a.key.fingerprint);
      expect(f.names.sort()).toEqual(['cholesky_hi', 'cholesky_lo', 'mom2']);
      f.close();
      clearStatsMemory();
      const b = await secondMoment(model, site, opts);
      expect(b.fromCache).toBe(true);
      expect(Array.from(b.mom2)).toEqual(Array.from(a.mom2));
      expect(Array.from(await b.solve(a.mom2.subarray(0, 512))).map((x) => +x.toFixed(6))).toEqual(Array.from(await a.solve(a.mom2.subarray(0, 512))).map((x) => +x.toFixed(6)));
      // Editing the matrix itself keeps the key fingerprint (sequential edits hit the cache) ...
      const W = model.weight('layers.1.mixer.out_proj.weight');
      const outEdited = model.withWeights(new Map([['layers.1.mixer.out_proj.weight', W.clone()]]));
      outEdited.weight('layers.1.mixer.out_proj.weight').data[0] += 1;
      expect(keyFingerprint(outEdited, site.keyHook, 1)).toBe(a.key.fingerprint);
      // ... but changing a weight upstream of the key does not.
      const Win = model.weight('layers.0.mixer.in_proj.weight').clone();
      Win.data[5] += 1;
      expect(keyFingerprint(model.withWeights(new Map([['layers.0.mixer.in_proj.weight', Win]])), site.keyHook, 1)).not.toBe(a.key.fingerprint);
      // A different sample count is a different file.
      const c = await secondMoment(model, site, { ...opts, samples: 30 });
      expect(c.file).not.toBe(a.file);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('linear algebra and corpus', () => {
  it('Cholesky solves C x = k, and adds a ridge only for a singular C', () => {
    const n = 6;
    const A = new Float64Array(n * n);
    const M = Array.from({ length: n * n }, (_, i) => Math.sin(i * 1.7) + (i % (n + 1) === 0 ? 2 : 0));
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) A[i * n + j] += M[i * n + k] * M[j * n + k];
    const f = cholesky(A, n);
    expect(f.jitter).toBe(0);
    const b = [1, -2, 3, 0.5, 0, 4];
    const x = choleskySolve(f, b);
    for (let i = 0; i < n; i++) expect(b.reduce((_, __, j) => _ + A[i * n + j] * x[j], 0)).toBeCloseTo(b[i], 9);
    const singular = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) singular[i * n + j] = (i + 1) * (j + 1); // rank one
    expect(cholesky(singular, n).jitter).toBeGreaterThan(0);
  });

  it('the blocked (ONNX MatMul) factor equals the plain one', async () => {
    const n = 300;
    const M = Float64Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011));
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += M[i * n + k] * M[j * n + k];
      A[i * n + j] = A[j * n + i] = s / n + (i === j ? 0.1 : 0);
    }
    const plain = cholesky(A, n);
    const blocked = await choleskyBlocked(A, n, 64);
    let err = 0, max = 0;
    for (let i = 0; i < n * n; i++) (err = Math.max(err, Math.abs(plain.L[i] - blocked.L[i]))), (max = Math.max(max, Math.abs(plain.L[i])));
    expect(err).toBeLessThan(1e-4 * max);
    const b = Array.from({ length: n }, (_, i) => Math.cos(i));
    const x1 = choleskySolve(plain, b), x2 = choleskySolve(blocked, b);
    let dx = 0, nx = 0;
    for (let i = 0; i < n; i++) (dx += (x1[i] - x2[i]) ** 2), (nx += x1[i] ** 2);
    expect(Math.sqrt(dx / nx)).toBeLessThan(1e-3);
  });

  it('reads the bundled WikiText-2 as detokenised paragraphs', () => {
    const c = wikitextCorpus();
    expect(c.documents.length).toBeGreaterThan(3000);
    expect(c.documents.some((d) => d.includes(' @-@ ') || d.includes('<unk>') || /^=.*=$/.test(d))).toBe(false);
    expect(detokenizeWikitext('a guest @-@ starring role , in 2 @,@ 000 ( 24 in ) .')).toBe('a guest-starring role, in 2,000 (24 in).');
    expect(wikitextCorpus().id).toBe(c.id);
  });
});
