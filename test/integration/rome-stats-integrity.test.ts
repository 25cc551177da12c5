/**
 * The statistics cache never serves a damaged entry (issue #16, defect 5): a flipped bit, a NaN
 * row, a reshaped matrix or a zero count is detected on read, noted, recomputed and rewritten; and
 * the weight fingerprint sees an in-place edit of `model.weight(...).data`.
 */
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Model } from '../../src/runtime/model';
import { SafetensorsFile, writeSafetensors, WritableTensor } from '../../src/io/safetensors';
import { clearStatsMemory, secondMoment } from '../../src/methods/rome/stats';
import { textCorpus } from '../../src/methods/rome/corpus';
import { keyFingerprint } from '../../src/methods/rome/stats-cache';
import { editSite } from '../../src/methods/rome/sites';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');
const TEXT = 'Paris is the capital and most populous city of France.\n\nThe Space Needle is an observation tower in Seattle.';

/** Rewrite a stats file with its tensors and metadata changed (a valid safetensors file either way). */
function rewriteStats(file: string, change: (tensors: Record<string, WritableTensor & { data: Float32Array }>, md: Record<string, string>) => void): void {
  const f = SafetensorsFile.open(file);
  const tensors: Record<string, WritableTensor & { data: Float32Array }> = {};
  for (const n of f.names) tensors[n] = { dtype: 'F32', shape: f.info(n).shape, data: f.readFloat32(n) };
  const md = { ...f.metadata };
  f.close();
  change(tensors, md);
  writeSafetensors(file, tensors, md);
}

describe('the ROME statistics cache on mamba-facts', () => {
  let model: Model;
  let dir: string;
  const site = () => editSite(model, 1, 'W_o');
  const opts = () => ({ corpus: textCorpus(TEXT, { name: 'tiny' }), samples: 20, maxLength: 16, cache: dir, progress: false });
  beforeAll(async () => {
    model = await Model.load(path.join(MODELS, 'mamba-facts'));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-stats-int-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const damages: Array<[string, (file: string) => void, RegExp]> = [
    ['one flipped bit in the Cholesky factor', (file) => {
      const bytes = fs.readFileSync(file);
      const len = Number(bytes.readBigUInt64LE(0));
      const { data_offsets: [begin] } = JSON.parse(bytes.subarray(8, 8 + len).toString()).cholesky_hi;
      bytes[8 + len + begin + 2] ^= 0x10; // a mantissa bit of the first element
      fs.writeFileSync(file, bytes);
    }, /tensor "cholesky_hi" does not match its checksum/],
    ['a NaN row (with a matching checksum)', (file) => rewriteStats(file, (t, md) => {
      const dim = Number(md.dim);
      t.mom2.data.fill(NaN, 3 * dim, 4 * dim);
      md.sha256_mom2 = crypto.createHash('sha256').update(new Uint8Array(t.mom2.data.buffer)).digest('hex'); // only the finiteness check can catch it
    }), /tensor "mom2" holds NaN or infinite values/],
    ['a reshaped matrix', (file) => rewriteStats(file, (t, md) => {
      const dim = Number(md.dim);
      t.mom2.shape = [dim / 2, dim * 2];
    }), /tensor "mom2" is F32 \[\d+,\d+\], expected F32 \[\d+, \d+\]/],
    ['count 0', (file) => rewriteStats(file, (_, md) => { md.count = '0'; }), /metadata "count" "0" is not a positive integer/],
  ];

  for (const [label, damage, note] of damages) {
    it(`${label}: noted, recomputed and rewritten, never served`, async () => {
      clearStatsMemory();
      const first = await secondMoment(model, site(), opts());
      damage(first.file!);
      clearStatsMemory();
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      let again;
      let notes = '';
      try {
        again = await secondMoment(model, site(), opts());
        notes = warn.mock.calls.map((c) => String(c[0])).join('\n');
      } finally {
        warn.mockRestore();
      }
      expect(again.fromCache).toBe(false);
      expect(notes).toMatch(note);
      expect(Array.from(again.mom2)).toEqual(Array.from(first.mom2));
      clearStatsMemory();
      expect((await secondMoment(model, site(), opts())).fromCache).toBe(true); // the rewritten entry is good
    });
  }

  it('the fingerprint sees an in-place edit of a weight upstream of the key', () => {
    const before = keyFingerprint(model, 'layers.1.mixer.out_proj_in', 1);
    const w = model.weight('layers.0.mixer.in_proj.weight');
    const old = w.data[5];
    w.data[5] += 1;
    try {
      expect(keyFingerprint(model, 'layers.1.mixer.out_proj_in', 1)).not.toBe(before);
    } finally {
      w.data[5] = old;
    }
    expect(keyFingerprint(model, 'layers.1.mixer.out_proj_in', 1)).toBe(before);
  });
});
