/**
 * `npm run cli -- atp` run as a user runs it (a child process through tsx): its JSON equals the
 * library's denoising estimates for the same pair, kinds and metric; bad input exits 1 with one line.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'child_process';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { attributionPatching, logProbMetric } from '../../src/methods/attribution';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const MODEL = 'data/models/neox-facts';
const clean = 'The Eiffel Tower is located in the city of';
const corrupt = 'The Colosseum is located in the city of';

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, ['src/cli/main.ts', ...args], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

describe('cli atp', () => {
  it('prints the library estimates per kind as [layer][position]', async () => {
    const out = await cli('atp', '--model', MODEL, '--clean', clean, '--corrupt', corrupt, '--answer', ' Paris', '--kinds', 'attn.out,mlp.out', '--metric', 'logprob');
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const json = JSON.parse(out.stdout) as { kinds: Record<string, number[][]> };
    expect(Object.keys(json.kinds)).toEqual(['attn.out', 'mlp.out']);
    const model = await Model.load(path.join(ROOT, MODEL));
    const [res] = await attributionPatching(model, [{ clean: model.encode(clean), corrupt: model.encode(corrupt) }], logProbMetric([model.encode(' Paris')[0]]), { kinds: ['attn.out', 'mlp.out'] });
    for (const k of ['attn.out', 'mlp.out']) {
      expect(json.kinds[k]).toHaveLength(model.nLayers);
      expect(json.kinds[k][0]).toHaveLength(model.encode(clean).length);
      json.kinds[k].forEach((row, l) => row.forEach((x, t) => expect(Math.abs(x - res.kinds[k].estimate[l][t])).toBeLessThan(1e-6)));
    }
    expect(json.kinds['mlp.out'].flat().some((x) => Math.abs(x) > 1e-3)).toBe(true);
  });

  it('unequal prompt lengths and unknown kinds exit 1 with one line', async () => {
    const a = await cli('atp', '--model', MODEL, '--clean', clean, '--corrupt', `${corrupt} too`, '--answer', ' Paris');
    expect(a.code).toBe(1);
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    expect(a.stderr).toMatch(/equal token length/);
    const b = await cli('atp', '--model', MODEL, '--clean', clean, '--corrupt', corrupt, '--answer', ' Paris', '--kinds', 'mixer.gate');
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/kind "mixer.gate" is not a hook of gpt_neox/);
  });
});
