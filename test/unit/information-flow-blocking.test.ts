/**
 * Exact path blocking in Mamba (src/methods/information-flow/path-blocking.ts) against a slow
 * pure-TypeScript oracle written from the block maths (reference.ts): the blocked target's Conv+SSM
 * output equals the oracle's sums with the source terms left out; blocking nothing changes nothing;
 * every other position is untouched; blocking something does change the target; and two end-to-end
 * identities that do not use the oracle at all. On the random tiny fixture model (fast).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { Tensor } from '../../src/runtime/tensor';
import { interventionHooks } from '../../src/runtime/interventions';
import { convSsmWeights, referenceSsmOut, BlockMode } from '../../src/methods/information-flow/reference';
import { pathBlockingHooks, PathBlock } from '../../src/methods/information-flow/path-blocking';
import { FactlensError } from '../../src/errors';

const FIX = path.join(__dirname, '..', 'fixtures');
const IDS = [161, 71, 338, 280, 109, 92, 176, 253, 17, 400, 3, 66, 250]; // 13 tokens
const SHORT = [5, 301, 77, 42, 129, 11, 8, 230, 90]; // 9 tokens (right-padded in a batch with IDS)

let model: Model;
const names = (l: number) => [`layers.${l}.mixer.x`, `layers.${l}.mixer.ssm_out`];
const allNames = () => [...Array(model.nLayers).keys()].flatMap(names);

function rowOf(t: Tensor, b: number): Float32Array {
  return t.data.subarray(b * t.stride(0), (b + 1) * t.stride(0));
}
function vecAt(t: Tensor, b: number, pos: number): Float32Array {
  const E = t.shape[2];
  return t.data.subarray((b * t.shape[1] + pos) * E, (b * t.shape[1] + pos + 1) * E);
}
function maxAbs(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
function scale(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

beforeAll(async () => {
  model = await Model.load(path.join(FIX, 'tiny-mamba'));
});

describe('the slow oracle', () => {
  it('with nothing left out reproduces the engine\'s s at every layer and position', async () => {
    const r = await model.runWithCache([IDS], allNames(), { logits: 'none' });
    let worst = 0;
    for (let l = 0; l < model.nLayers; l++) {
      const w = convSsmWeights(model, l);
      const a = r.cache.get(`layers.${l}.mixer.x`);
      const s = r.cache.get(`layers.${l}.mixer.ssm_out`);
      for (let t = 0; t < IDS.length; t++) {
        const ref = referenceSsmOut(w, rowOf(a, 0), IDS.length, t, []);
        worst = Math.max(worst, maxAbs(ref, vecAt(s, 0, t)) / scale(ref));
      }
    }
    console.log(`oracle vs engine, unblocked: max relative |Δs| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('exact path blocking at one layer', () => {
  for (const mode of ['exact', 'exact+slots', 'retention'] as BlockMode[]) {
    it(`${mode}: s_t equals the oracle; every other position and earlier layer is bit-for-bit clean`, async () => {
      const layer = 1;
      const T = IDS.length;
      const targets = [6, T - 1];
      const sources = [2, 3, 5, 9];
      const clean = await model.runWithCache([IDS], allNames(), { logits: 'last' });
      const blocked = await model.run([IDS], {
        hooks: pathBlockingHooks(model, [{ layers: [layer], targets, sources, mode }]), cache: allNames(), logits: 'last',
      });
      const w = convSsmWeights(model, layer);
      const a = clean.cache.get(`layers.${layer}.mixer.x`);
      expect(maxAbs(blocked.cache.get(`layers.${layer}.mixer.x`).data, a.data)).toBe(0);
      const sClean = clean.cache.get(`layers.${layer}.mixer.ssm_out`);
      const sBlocked = blocked.cache.get(`layers.${layer}.mixer.ssm_out`);
      for (const t of targets) {
        const ref = referenceSsmOut(w, rowOf(a, 0), T, t, sources, mode);
        const err = maxAbs(ref, vecAt(sBlocked, 0, t)) / scale(ref);
        const change = maxAbs(vecAt(sClean, 0, t), vecAt(sBlocked, 0, t)) / scale(ref);
        console.log(`${mode}, layer ${layer}, target ${t}: oracle error ${err.toExponential(2)} (relative), change from clean ${change.toFixed(3)}`);
        expect(err).toBeLessThan(1e-5);
        // blocking does something (the retention-only precursor much less: the conv still carries a_q)
        expect(change).toBeGreaterThan(mode === 'retention' ? 1e-4 : 1e-2);
      }
      for (let t = 0; t < T; t++) if (!targets.includes(t)) expect(maxAbs(vecAt(sClean, 0, t), vecAt(sBlocked, 0, t))).toBe(0);
      for (let l = 0; l < layer; l++) for (const n of names(l)) expect(maxAbs(clean.cache.get(n).data, blocked.cache.get(n).data)).toBe(0);
    });
  }

  it('a target that is itself a source loses its own a_t (conv tap and D skip)', async () => {
    const T = IDS.length;
    const blocked = await model.run([IDS], { hooks: pathBlockingHooks(model, [{ layers: [2], targets: 'last', sources: [T - 1] }]), cache: names(2), logits: 'none' });
    const a = blocked.cache.get('layers.2.mixer.x');
    const ref = referenceSsmOut(convSsmWeights(model, 2), rowOf(a, 0), T, T - 1, [T - 1]);
    expect(maxAbs(ref, vecAt(blocked.cache.get('layers.2.mixer.ssm_out'), 0, T - 1)) / scale(ref)).toBeLessThan(1e-5);
  });
});

describe('exact path blocking over a window, in a right-padded batch', () => {
  it('at every blocked layer each row\'s targets equal the oracle on that run\'s own a; other positions are the unblocked Conv+SSM of it', async () => {
    const window = [1, 2, 3];
    const blocks: PathBlock[] = [
      { layers: window, targets: 'last', sources: [0, 1, 2, 3], rows: [0] },
      { layers: window, targets: [4, 8], sources: [1, 6], rows: [1] },
    ];
    const batch = model.batch([IDS, SHORT]);
    const r = await model.run(batch, { hooks: pathBlockingHooks(model, blocks), cache: allNames(), logits: 'last' });
    let worstBlocked = 0;
    let worstOther = 0;
    for (const l of window) {
      const w = convSsmWeights(model, l);
      const a = r.cache.get(`layers.${l}.mixer.x`);
      const s = r.cache.get(`layers.${l}.mixer.ssm_out`);
      for (const [b, targets, sources] of [[0, [IDS.length - 1], [0, 1, 2, 3]], [1, [4, 8], [1, 6]]] as Array<[number, number[], number[]]>) {
        const len = batch.lengths[b];
        for (let t = 0; t < len; t++) {
          const isTarget = targets.includes(t);
          const ref = referenceSsmOut(w, rowOf(a, b), batch.T, t, isTarget ? sources : []);
          const err = maxAbs(ref, vecAt(s, b, t)) / scale(ref);
          if (isTarget) worstBlocked = Math.max(worstBlocked, err);
          else worstOther = Math.max(worstOther, err);
        }
      }
    }
    console.log(`window [1,2,3], 2 rows: oracle error at targets ${worstBlocked.toExponential(2)}, elsewhere ${worstOther.toExponential(2)}`);
    expect(worstBlocked).toBeLessThan(1e-5);
    expect(worstOther).toBeLessThan(1e-5);
  });

  it('rows are independent: a row blocked inside a batch equals the same row run alone', async () => {
    const block: PathBlock = { layers: [0, 2], targets: 'last', sources: [2, 4] };
    const together = await model.run([IDS, SHORT], { hooks: pathBlockingHooks(model, [{ ...block, rows: [1] }]), logits: 'last' });
    const alone = await model.run([SHORT], { hooks: pathBlockingHooks(model, [block]), logits: 'last' });
    const plain = await model.run([IDS], { logits: 'last' });
    const V = alone.logits!.shape[2];
    expect(maxAbs(together.logits!.data.subarray(V, 2 * V), alone.logits!.data)).toBeLessThan(1e-5);
    expect(maxAbs(together.logits!.data.subarray(0, V), plain.logits!.data)).toBeLessThan(1e-5);
  });
});

describe('identities', () => {
  it('blocking nothing changes nothing', async () => {
    const plain = await model.run([IDS, SHORT], { cache: allNames(), logits: 'all' });
    const all = [...Array(model.nLayers).keys()];
    for (const mode of ['exact', 'exact+slots', 'retention'] as BlockMode[]) {
      const r = await model.run([IDS, SHORT], { hooks: pathBlockingHooks(model, [{ layers: all, targets: 'last', sources: [], mode }]), cache: allNames(), logits: 'all' });
      const dl = maxAbs(plain.logits!.data, r.logits!.data);
      let ds = 0;
      for (const n of allNames()) ds = Math.max(ds, maxAbs(plain.cache.get(n).data, r.cache.get(n).data));
      console.log(`${mode}, empty source set at all layers: max |Δlogits| = ${dl.toExponential(2)}, max |Δs| = ${ds.toExponential(2)}`);
      expect(dl).toBeLessThan(1e-6);
      expect(ds).toBeLessThan(1e-6);
    }
  });

  it("'exact' with every earlier token blocked at every layer = zeroing a at those positions everywhere (target's logits)", async () => {
    const T = IDS.length;
    const earlier = [...Array(T - 1).keys()];
    const all = [...Array(model.nLayers).keys()];
    const blocked = await model.run([IDS], { hooks: pathBlockingHooks(model, [{ layers: all, targets: 'last', sources: earlier }]), logits: 'last' });
    const zeroed = await model.run([IDS], { hooks: interventionHooks(model, [{ hook: 'layers.{layer}.mixer.x', layers: all, positions: earlier, op: 'zero' }]), logits: 'last' });
    const d = maxAbs(blocked.logits!.data, zeroed.logits!.data);
    console.log(`exact, all earlier tokens blocked: |Δlogits| vs a-zeroed run = ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
    const plain = await model.run([IDS], { logits: 'last' });
    expect(maxAbs(blocked.logits!.data, plain.logits!.data)).toBeGreaterThan(1e-2);
  });

  it("'exact+slots' with every earlier token blocked at every layer = running the last token alone", async () => {
    const T = IDS.length;
    const all = [...Array(model.nLayers).keys()];
    const blocked = await model.run([IDS], { hooks: pathBlockingHooks(model, [{ layers: all, targets: 'last', sources: [...Array(T - 1).keys()], mode: 'exact+slots' }]), logits: 'last' });
    const alone = await model.run([[IDS[T - 1]]], { logits: 'last' });
    const d = maxAbs(blocked.logits!.data, alone.logits!.data);
    console.log(`exact+slots, all earlier tokens blocked: |Δlogits| vs the token alone = ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
  });
});

describe('errors', () => {
  it('names the bad argument', async () => {
    const neox = await Model.load(path.join(FIX, 'tiny-neox'));
    expect(() => pathBlockingHooks(neox, [])).toThrow(FactlensError);
    expect(() => pathBlockingHooks(model, [{ layers: [9], targets: 'last', sources: [] }])).toThrow(/layer 9/);
    const run = (b: PathBlock[]) => model.run([SHORT], { hooks: pathBlockingHooks(model, b), logits: 'none' });
    await expect(run([{ layers: [0], targets: [20], sources: [1] }])).rejects.toThrow(/target 20/);
    await expect(run([{ layers: [0], targets: [3], sources: [1] }, { layers: [0], targets: [3], sources: [2] }])).rejects.toThrow(/merge/);
  });
});
