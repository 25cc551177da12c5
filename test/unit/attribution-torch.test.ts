/**
 * AtP against PyTorch: denoising estimates (a_clean − a_corrupt) · ∂ log p(answer)/∂a of the residual
 * after each layer and of the block outputs, computed by tools/atp_fixture.py with torch autograd and
 * forward hooks on the HF modules (test/fixtures/atp-reference.json), equal ours within 1e-4.
 */
import { describe, expect, it } from 'vitest';
import fs from 'fs';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { attributionPatching, logProbMetric } from '../../src/methods/attribution';

const FIX = path.join(__dirname, '..', 'fixtures');
interface Reference { clean: number[]; corrupt: number[]; answer: number; base: number; kinds: Record<string, number[][]> }
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'atp-reference.json'), 'utf8')) as Record<string, Reference>;

for (const [fixture, r] of Object.entries(ref)) {
  it(`${fixture}: AtP equals PyTorch autograd's within 1e-4`, async () => {
    const model = await Model.load(path.join(FIX, fixture));
    const kinds = Object.keys(r.kinds);
    const [res] = await attributionPatching(model, [{ clean: r.clean, corrupt: r.corrupt }], logProbMetric([r.answer]), { kinds });
    expect(res.base).toBeCloseTo(r.base, 4);
    let nonzero = 0;
    for (const k of kinds) {
      expect(res.kinds[k].estimate).toHaveLength(r.kinds[k].length);
      r.kinds[k].forEach((row, l) => row.forEach((want, t) => {
        expect(Math.abs(res.kinds[k].estimate[l][t] - want), `${k} layer ${l} position ${t}`).toBeLessThan(1e-4);
        if (Math.abs(want) > 1e-3) nonzero++;
      }));
    }
    expect(nonzero).toBeGreaterThan(10);
  });
}
