/**
 * Gradients against central finite differences on random directions, for
 * hook activations and weights of both architectures, and Jacobians between
 * two hook points.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { gradients, jacobian, nextTokenNll } from '../../src/runtime/grad';
import { rng } from '../../src/runtime/generate';
import { gaussian } from '../../src/runtime/interventions';
import { Tensor } from '../../src/runtime/tensor';
import { expectFiniteDifference } from '../support/fd-check';

const FIX = path.join(__dirname, '..', 'fixtures');
const ids = [191, 80, 91, 337, 439, 269, 332, 17, 250];

function randomDirection(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = Float32Array.from({ length: n }, () => gaussian(r));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);

async function lossWith(model: Model, hook: string, delta: Float32Array | null): Promise<number> {
  const hooks: Array<[string, (t: Tensor) => Tensor]> = delta ? [[hook, (t) => new Tensor(t.data.map((x, i) => x + delta[i]), t.shape)]] : [];
  const res = await model.run([ids], { hooks });
  return nextTokenNll(res.logits!, res.batch).loss;
}

for (const [fixture, hooks, weight] of [
  ['tiny-mamba', ['layers.1.mixer.x', 'layers.2.mixer.gate', 'layers.0.resid_post', 'layers.1.mixer.dt', 'embed'], 'layers.1.mixer.in_proj.weight'],
  ['tiny-neox', ['layers.1.attn.v', 'layers.2.mlp.key', 'layers.0.resid_post', 'layers.1.attn.pattern', 'embed'], 'layers.1.attention.query_key_value.weight'],
] as const) {
  describe(`gradients on ${fixture}`, () => {
    let model: Model;
    beforeAll(async () => {
      model = await Model.load(path.join(FIX, fixture));
    });

    it('hook gradients equal central finite differences along random directions', async () => {
      const res = await gradients(model, [ids], nextTokenNll, [...hooks]);
      for (const [k, hook] of hooks.entries()) {
        const g = res.grads.get(hook)!;
        // Length 4, not 1: along a unit direction some derivatives (mixer.dt's: 1.1e-3) are too small to test.
        const v = randomDirection(g.size, 7 + k).map((x) => 4 * x);
        const eps = 1e-2;
        const fd = ((await lossWith(model, hook, v.map((x) => x * eps))) - (await lossWith(model, hook, v.map((x) => -x * eps)))) / (2 * eps);
        const an = dot(g.data, v);
        expectFiniteDifference(an, fd, hook);
      }
    });

    it('weight gradients equal central finite differences along a random direction', async () => {
      const res = await gradients(model, [ids], nextTokenNll, [weight]);
      const g = res.grads.get(weight)!;
      const W = model.weight(weight);
      const v = randomDirection(W.size, 3).map((x) => 4 * x); // length 4, as above
      const eps = 1e-2;
      const lossAt = async (s: number) => {
        const edited = model.withWeights(new Map([[weight, new Tensor(W.data.map((x, i) => x + s * v[i]), W.shape)]]));
        const r = await edited.run([ids]);
        return nextTokenNll(r.logits!, r.batch).loss;
      };
      const fd = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
      expectFiniteDifference(dot(g.data, v), fd, weight);
      expect(model.weight(weight)).toBe(W); // withWeights never touches the original
    });

    it('the Jacobian between two hook points matches finite differences', async () => {
      const from = { hook: 'layers.1.resid_post', position: 3 };
      const to = { hook: 'layers.3.resid_post', position: 6 };
      const J = await jacobian(model, [ids], from, to, { chunk: 24 });
      const D = model.config.dModel;
      expect(J.shape).toEqual([D, D]);
      const v = randomDirection(D, 11);
      const eps = 1e-2;
      const outAt = async (s: number) => {
        const r = await model.run([ids], {
          cache: [to.hook],
          hooks: [[from.hook, (t) => {
            const o = t.clone();
            for (let i = 0; i < D; i++) o.data[from.position * D + i] += s * v[i];
            return o;
          }]],
        });
        return r.cache.get(to.hook).data.slice(to.position * D, (to.position + 1) * D);
      };
      const plus = await outAt(eps);
      const minus = await outAt(-eps);
      let err = 0;
      let scale = 0;
      for (let i = 0; i < D; i++) {
        const fd = (plus[i] - minus[i]) / (2 * eps);
        let jv = 0;
        for (let j = 0; j < D; j++) jv += J.data[i * D + j] * v[j];
        err = Math.max(err, Math.abs(fd - jv));
        scale = Math.max(scale, Math.abs(fd));
      }
      expect(scale).toBeGreaterThan(1e-3);
      expect(err).toBeLessThan(2e-3 * Math.max(1, scale));
    });
  });
}
