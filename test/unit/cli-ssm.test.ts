/**
 * The command line on Falcon-Mamba and Mamba-2 (a child process through tsx, as a user runs it):
 * activations and gradients equal the transformers fixtures; hooks lists Mamba-2's points.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'child_process';
import fs from 'fs';
import path from 'path';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, ['src/cli/main.ts', ...args], { cwd: ROOT, maxBuffer: 256 * 2 ** 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);
function maxDiff(a: unknown, b: unknown): number {
  const [fa, fb] = [flat(a), flat(b)];
  expect(fa.length).toBe(fb.length);
  return fa.reduce((m, x, i) => Math.max(m, Math.abs(x - fb[i])), 0);
}

for (const [fixture, hook, key] of [['tiny-mamba2', 'mixer.state', 'state'], ['tiny-falcon-mamba', 'mixer.B', 'B']] as const) {
  describe(`cli on ${fixture}`, () => {
    const dir = `test/fixtures/${fixture}`;
    const kase = JSON.parse(fs.readFileSync(path.join(ROOT, dir, 'reference.json'), 'utf8')).cases[2]; // 12 tokens
    const ids = (kase.input_ids as number[]).join(',');

    it(`activations: logits and layers.1.${hook} equal the fixture`, async () => {
      const r = await cli('activations', '--model', dir, '--ids', ids, '--hooks', `layers.1.${hook},logits`);
      expect(r.stderr).not.toMatch(/error/);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(maxDiff(out.logits, kase.logits)).toBeLessThan(1e-4);
      expect(maxDiff(out.hooks[`layers.1.${hook}`], kase.layers[1][key])).toBeLessThan(1e-4);
    });

    it('grad --wrt the out_proj weight equals the fixture gradient', async () => {
      const g = kase.grad;
      const r = await cli('grad', '--model', dir, '--ids', ids, '--wrt', `layers.${g.layer}.mixer.out_proj.weight`);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      const scale = Math.max(...flat(g.d_loss_d_out_proj_weight).map(Math.abs));
      expect(maxDiff(out.grad, g.d_loss_d_out_proj_weight) / scale).toBeLessThan(1e-4);
    });
  });
}

describe('cli hooks on mamba2', () => {
  it('lists the Mamba-2 points, and an unknown one fails in one line naming it', async () => {
    const r = await cli('hooks', '--model', 'test/fixtures/tiny-mamba2');
    expect(r.code).toBe(0);
    for (const n of ['mixer.conv_in', 'mixer.dt_in', 'mixer.state', 'mixer.out_proj_in']) expect(r.stdout).toContain(n);
    const bad = await cli('activations', '--model', 'test/fixtures/tiny-mamba2', '--ids', '1,2', '--hooks', 'layers.0.mixer.x_proj');
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/mixer\.x_proj/);
  });
});
