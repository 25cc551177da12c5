/**
 * Mamba's hidden attention: Σ_q α_{t,q} u_q reproduces the scan output s_t (mixer.ssm_out) at every
 * position and channel; removing α_{t,q}'s term equals the engine's path blocking of q → t in
 * 'retention' mode (which drops exactly the scan term of q, keeping the D skip); aggregates equal
 * their definitions; channel blocks change nothing; memory stays bounded on a large synthetic scan.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { pathBlockingHooks } from '../../src/methods/information-flow/path-blocking';
import { hiddenAttention, hiddenAttentionOf, scanInputs } from '../../src/methods/attribution';
import { rng } from '../../src/runtime/generate';
import { ssmLayout } from '../../src/models/ssm';

const FIX = path.join(__dirname, '..', 'fixtures');
const ids = [191, 80, 91, 137, 239, 69, 232, 17, 250]; // < 256: the smallest fixture vocabulary

// tiny-mamba2: 4 heads of 16 channels in 2 groups, so heads read different B and C.
describe.each(['tiny-mamba', 'tiny-mamba2'])('hidden attention on %s', (fixture) => {
  let model: Model;
  let E: number;
  beforeAll(async () => {
    model = await Model.load(path.join(FIX, fixture));
    E = ssmLayout(model.config)!.dInner;
  });

  it('Σ_q α_{t,q} u_q reproduces the scan output s_t to 1e-5 at every layer, position and channel', async () => {
    const channels = [...Array(E).keys()];
    for (let layer = 0; layer < model.nLayers; layer++) {
      const x = await scanInputs(model, [ids], layer);
      const { perChannel } = hiddenAttentionOf(x, { channels, block: 48 });
      const s = (await model.run([ids], { cache: [`layers.${layer}.mixer.ssm_out`] })).cache.get(`layers.${layer}.mixer.ssm_out`); // [1,T,E]
      let worst = 0;
      let scale = 0;
      for (let e = 0; e < E; e++) {
        const a = perChannel.get(e)!;
        for (let t = 0; t < x.T; t++) {
          let sum = 0;
          for (let q = 0; q <= t; q++) sum += a[t][q] * x.u[q * E + e];
          for (let q = t + 1; q < x.T; q++) expect(a[t][q]).toBe(0);
          worst = Math.max(worst, Math.abs(sum - s.data[t * E + e]));
          scale = Math.max(scale, Math.abs(s.data[t * E + e]));
        }
      }
      expect(scale).toBeGreaterThan(1e-2);
      expect(worst, `layer ${layer}`).toBeLessThan(1e-5);
    }
  });

  it("removing α_{t,q}'s term equals path blocking q → t (retention mode)", async () => {
    const layer = 2;
    const x = await scanInputs(model, [ids], layer);
    const { perChannel } = hiddenAttentionOf(x, { channels: [...Array(E).keys()] });
    const hook = `layers.${layer}.mixer.ssm_out`;
    const s = (await model.run([ids], { cache: [hook] })).cache.get(hook);
    for (const [t, q] of [[6, 2], [8, 7], [5, 5], [3, 0]]) {
      const blocked = (await model.run([ids], { cache: [hook], hooks: pathBlockingHooks(model, [{ layers: [layer], targets: [t], sources: [q], mode: 'retention' }]) })).cache.get(hook);
      let worst = 0;
      let moved = 0;
      for (let e = 0; e < E; e++) {
        const term = (perChannel.get(e)![t][q] - (q === t ? x.D[e] : 0)) * x.u[q * E + e]; // retention keeps the D skip
        worst = Math.max(worst, Math.abs(s.data[t * E + e] - term - blocked.data[t * E + e]));
        moved = Math.max(moved, Math.abs(term));
      }
      expect(moved, `${q} → ${t} carries something`).toBeGreaterThan(1e-4);
      expect(worst, `${q} → ${t}`).toBeLessThan(1e-5);
    }
  });

  it('aggregates equal their definitions over the per-channel α, whatever the block size', async () => {
    const layer = 1;
    const x = await scanInputs(model, [ids], layer);
    const all = hiddenAttentionOf(x, { channels: [...Array(E).keys()], block: 7, aggregate: 'mean' });
    for (const aggregate of ['mean', 'abs', 'contribution'] as const) {
      const a = await hiddenAttention(model, [ids], layer, { aggregate, block: 64 });
      for (let t = 0; t < x.T; t++) for (let q = 0; q <= t; q++) {
        let want = 0;
        for (let e = 0; e < E; e++) {
          const v = all.perChannel.get(e)![t][q];
          want += (aggregate === 'mean' ? v : aggregate === 'abs' ? Math.abs(v) : Math.abs(v * x.u[q * E + e])) / E;
        }
        expect(Math.abs(a.aggregated[t][q] - want), `${aggregate} ${t},${q}`).toBeLessThan(1e-9);
      }
      expect(a.perChannel.size).toBe(0);
    }
  });

  it('bad input fails with a message naming the argument', async () => {
    await expect(hiddenAttention(model, [ids], 9)).rejects.toThrow(/layer 9/);
    await expect(hiddenAttention(model, [ids], 0, { channels: [99999] })).rejects.toThrow(/channel 99999/);
    await expect(hiddenAttention(model, [ids, ids], 0)).rejects.toThrow(/single prompt/);
    const neox = await Model.load(path.join(FIX, 'tiny-neox'));
    await expect(hiddenAttention(neox, [ids], 0)).rejects.toThrow(/gpt_neox/);
  });

  it("each channel reads its own group's B and C (a group count that does not divide E is refused)", async () => {
    const x = await scanInputs(model, [ids], 0);
    expect(x.G ?? 1).toBe(model.arch === 'mamba2' ? 2 : 1);
    expect(() => hiddenAttentionOf({ ...x, G: 3 })).toThrow(/groups G = 3 must divide/);
  });
});

describe('hidden attention memory', () => {
  it('streams channel blocks: a scan whose E·N·T² tensor would take 600 MB stays within a few MB', () => {
    const [T, E, N] = [48, 4096, 16];
    const r = rng(1);
    const uniform = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
    const x = { T, E, N, dt: uniform(T * E, 0.001, 0.1), B: uniform(T * N, -1, 1), C: uniform(T * N, -1, 1), u: uniform(T * E, -1, 1), A: uniform(E * N, -2, -0.1), D: uniform(E, 0, 1) };
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const res = hiddenAttentionOf(x, { block: 64, onBlock: () => void (peak = Math.max(peak, process.memoryUsage().arrayBuffers - before)) });
    expect(res.aggregated).toHaveLength(T);
    expect(peak).toBeLessThan(16 * 2 ** 20);
  });
});
