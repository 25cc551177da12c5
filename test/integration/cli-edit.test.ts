/**
 * The `memit` and `rome` commands, run as a user runs them (a child process through tsx): the
 * edited records' scores come back as JSON, the output directory is a checkpoint that reloads with
 * the edited tensors changed and the others equal, and bad arguments exit 1 with one readable line.
 */
import { execFile } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const MODEL = 'data/models/neox-facts';
const RECORDS = 'data/counterfact/counterfact_500.json';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-cli-edit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, ['src/cli/main.ts', ...args], { cwd: ROOT, maxBuffer: 16 * 2 ** 20, env: { ...process.env, FACTLENS_CACHE: path.join(tmp, 'cache') } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

const FAST = ['--steps', '4', '--stats-samples', '2000'];

describe('cli memit / rome', () => {
  it.each([
    ['memit', ['--layers', '2,3'], ['layers.2.mlp.dense_4h_to_h.weight', 'layers.3.mlp.dense_4h_to_h.weight']],
    ['rome', ['--layers', '3'], ['layers.3.mlp.dense_4h_to_h.weight']],
  ])('%s edits, saves and prints ES/PS/NS', async (cmd, extra, weights) => {
    const out = path.join(tmp, cmd);
    const r = await cli(cmd, '--model', MODEL, '--records', RECORDS, '--n', '2', '--known', ...extra, ...FAST, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.n).toBe(2);
    for (const k of ['ES', 'PS', 'NS', 'S']) expect(res[k]).toBeGreaterThanOrEqual(0);
    expect(res.edited).toEqual(weights.map((w) => `gpt_neox.${w}`));
    const [src, saved] = await Promise.all([Model.load(path.join(ROOT, MODEL)), Model.load(out)]);
    for (const name of src.weightNames()) {
      const same = Buffer.from(src.weight(name).data.buffer).equals(Buffer.from(saved.weight(name).data.buffer));
      expect([name, same]).toEqual([name, !weights.includes(name)]);
    }
  });

  it('rejects bad arguments with one line', async () => {
    const base = ['--model', MODEL, '--records', RECORDS];
    const cases: Array<[string[], RegExp]> = [
      [['memit', ...base, '--n', '2'], /^error: missing --out/],
      [['memit', ...base, '--n', '0', '--out', tmp], /^error: --n must be a positive integer, got "0"/],
      [['rome', ...base, '--n', '1', '--layers', '2,3', '--out', tmp], /^error: rome edits one layer/],
      [['memit', ...base, '--n', '1', '--layers', 'a', '--out', tmp], /^error: --layers must be a comma-separated list/],
      [['memit', ...base, '--n', '501', '--out', tmp], /^error: .*500 records, --n asks for 501/],
      [['memit', '--model', MODEL, '--records', 'nope.json', '--n', '1', '--out', tmp], /^error: cannot read CounterFact file nope.json/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(re);
    }
  });
});
