/**
 * Packed mode in real use (issue #16, defects 1, 3 and 6): plain runs in flight when a hooked run
 * retires the packed sessions finish on the sessions they started with; the Hugging Face hub cache
 * layout (snapshots/<rev>/* -> ../../blobs/<sha>, a real symlinked tree) runs packed; a checkpoint
 * file changed after load is detected with a clear error instead of wrong numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { CheckpointError } from '../../src/io';
import { copyCheckpoint, expectFactlensError } from '../support/checkpoint-copies';
import { maxDiff } from '../support/max-diff';

const MODELS = path.join(__dirname, '..', '..', 'data', 'models');
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-packed-rel-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

for (const name of ['mamba-facts', 'neox-facts']) {
  it(`${name}: 12 plain runs with a hooked run started among them all succeed, with the default model's logits`, async () => {
    const plain = await Model.load(path.join(MODELS, name));
    const packed = await Model.load(path.join(MODELS, name), { packed: true });
    const ids = plain.encode('The Eiffel Tower is located in the city of');
    const want = await plain.logits([ids]);
    const runs: Array<Promise<unknown>> = [];
    for (let i = 0; i < 12; i++) {
      runs.push(packed.logits([ids]));
      if (i === 2) runs.push(packed.runWithHooks([ids], [['layers.1.resid_post', (t) => t.clone()]])); // retires the packed sessions
    }
    const settled = await Promise.allSettled(runs);
    const failed = settled.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
    expect(failed).toEqual([]);
    for (const s of settled) {
      const v = (s as PromiseFulfilledResult<{ data: Float32Array } | { logits: { data: Float32Array } }>).value;
      const logits = 'logits' in v ? v.logits : v;
      expect(maxDiff(logits.data, want.data)).toBeLessThan(1e-4);
    }
    expect(packed.packedWeights).toBeNull(); // retired, and later runs use float32 weights
    expect(maxDiff((await packed.logits([ids])).data, want.data)).toBeLessThan(1e-4);
  });
}

/** The hub cache's layout for `src`: every file a blob named by its SHA-256, linked from snapshots/<rev>/. */
function hubCache(src: string, root: string): string {
  const repo = path.join(root, 'models--factlens--demo');
  const snapshot = path.join(repo, 'snapshots', '0123456789abcdef0123456789abcdef01234567');
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(snapshot, { recursive: true });
  for (const f of fs.readdirSync(src)) {
    const bytes = fs.readFileSync(path.join(src, f));
    const sha = crypto.createHash('sha256').update(bytes).digest('hex');
    fs.writeFileSync(path.join(repo, 'blobs', sha), bytes);
    fs.symlinkSync(path.join('..', '..', 'blobs', sha), path.join(snapshot, f));
  }
  return snapshot;
}

describe('the Hugging Face hub cache layout', () => {
  it('a packed model loads from snapshots/<rev>/ (symlinks into ../../blobs) and gives the default logits', async () => {
    const snapshot = hubCache(path.join(MODELS, 'neox-facts'), path.join(tmp, 'hub'));
    expect(fs.lstatSync(path.join(snapshot, 'model.safetensors')).isSymbolicLink()).toBe(true);
    const plain = await Model.load(snapshot);
    const packed = await Model.load(snapshot, { packed: true });
    const ids = plain.encode('The Eiffel Tower is located in the city of');
    expect(maxDiff((await packed.logits([ids])).data, (await plain.logits([ids])).data)).toBeLessThan(1e-4);
    await packed.releasePacked();
  });
});

describe('a checkpoint file changed after a packed load', () => {
  const copy = (label: string) => copyCheckpoint(path.join(MODELS, 'mamba-facts'), path.join(tmp, label));
  const file = (dir: string) => path.join(dir, 'model.safetensors');

  it('truncated: the next forward says the file changed, naming it', async () => {
    const dir = copy('truncated');
    const m = await Model.load(dir, { packed: true });
    fs.truncateSync(file(dir), fs.statSync(file(dir)).size - 4096);
    const msg = await expectFactlensError(() => m.logits([[5, 6, 7]]), /model\.safetensors: checkpoint file changed since it was opened/, /load the model again/);
    expect(msg).toContain(dir);
  });

  it('overwritten with zeros in place (same size): detected by its mtime, not run as all-zero weights', async () => {
    const dir = copy('zeroed');
    const m = await Model.load(dir, { packed: true });
    await new Promise((r) => setTimeout(r, 20)); // let the clock move past the load's mtime
    const fd = fs.openSync(file(dir), 'r+');
    fs.writeSync(fd, Buffer.alloc(1 << 16), 0, 1 << 16, 4096);
    fs.closeSync(fd);
    await expectFactlensError(() => m.logits([[5, 6, 7]]), /checkpoint file changed since it was opened/);
  });

  it('replaced after packed runs: a hook, which reads float32 weights from the file, is refused too', async () => {
    const dir = copy('replaced');
    const m = await Model.load(dir, { packed: true });
    await m.logits([[5, 6, 7]]);
    fs.copyFileSync(file(dir), `${file(dir)}.new`);
    fs.renameSync(`${file(dir)}.new`, file(dir)); // another inode at the same path
    let err: unknown;
    try {
      await m.runWithHooks([[5, 6, 7]], [['layers.0.resid_post', (t) => t.clone()]]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect(String((err as Error).message)).toMatch(/changed since it was opened \(was inode \d+/);
  });
});
