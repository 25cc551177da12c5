/**
 * GradDrop: the gradient with layer ℓ's residual contribution's backward flow stopped equals the
 * finite difference of a run in which that contribution is frozen at its base value, and the
 * GradDrop estimate is 1/(L−1) Σ_ℓ of the magnitudes of those estimates.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import * as attribution from '../../src/methods/attribution';

const FIX = path.join(__dirname, '..', 'fixtures');
const clean = [191, 80, 91, 337, 439, 269, 332, 17, 250];
const corrupt = [191, 80, 11, 402, 439, 269, 332, 17, 250];
const answer = 42;

for (const [fixture, cells] of [
  ['tiny-mamba', [['resid_pre', 2, 3], ['mixer.ssm_out', 1, 4]]],
  ['tiny-neox', [['resid_pre', 2, 3], ['attn.v', 1, 2]]],
] as const) {
  describe(`GradDrop on ${fixture}`, () => {
    let model: Model;
    beforeAll(async () => {
      model = await Model.load(path.join(FIX, fixture));
    });

    it('each dropped-layer estimate equals a finite difference with that layer\'s contribution frozen; the score is their mean magnitude', async () => {
      const metric = attribution.logProbMetric([answer]);
      const L = model.nLayers;
      const [gd] = await attribution.attributionPatching(model, [{ clean, corrupt }], metric, { kinds: cells.map((c) => c[0]), method: 'graddrop' });
      for (const [kind, layer, pos] of cells) {
        const hook = `layers.${layer}.${kind}`;
        const src = (await model.run([clean], { cache: [hook] })).cache.get(hook);
        let sum = 0;
        const perLayer: number[] = [];
        for (let l = 0; l < L; l++) {
          const frozen = (fixture === 'tiny-mamba' ? ['mixer.out'] : ['attn.out', 'mlp.out']).map((k) => `layers.${l}.${k}`); // the layer's residual contribution
          const base = (await model.run([corrupt], { cache: [hook, ...frozen] })).cache;
          const metricAt = async (eps: number) => {
            const hooks: Array<[string, (t: Tensor) => Tensor]> = [
              [hook, (t) => {
                const o = t.clone();
                const heads = kind.startsWith('attn.');
                const [H, T, X] = heads ? [t.shape[1], t.shape[2], t.stride(2)] : [1, t.shape[1], t.stride(1)];
                for (let h = 0; h < H; h++) for (let x = 0; x < X; x++) {
                  const i = (h * T + pos) * X + x;
                  o.data[i] += eps * (src.data[i] - base.get(hook).data[i]);
                }
                return o;
              }],
              ...frozen.map((f): [string, (t: Tensor) => Tensor] => [f, () => base.get(f)]),
            ];
            return metric((await model.run([corrupt], { hooks, logits: 'last' })).logits!.data, 0).value;
          };
          const fd = ((await metricAt(1e-2)) - (await metricAt(-1e-2))) / 2e-2;
          sum += Math.abs(fd) / (L - 1);
          perLayer.push(fd);
        }
        expect(Math.abs(gd.kinds[kind].estimate[layer][pos] - sum), `${hook}@${pos}: GradDrop ${gd.kinds[kind].estimate[layer][pos]} vs Σ|fd|/(L−1) ${sum}`).toBeLessThan(1e-4);
        // dropping a layer before the cell's changes nothing (no path from the cell runs through it); later ones do
        const [atp] = await attribution.attributionPatching(model, [{ clean, corrupt }], metric, { kinds: [kind], layers: [layer] });
        const plain = atp.kinds[kind].estimate[0][pos];
        expect(perLayer.slice(layer).some((x) => Math.abs(x - plain) > 1e-3)).toBe(true);
        for (const x of perLayer.slice(0, layer)) expect(Math.abs(x - plain)).toBeLessThan(1e-4);
      }
    });
  });
}
