/**
 * Exact patching on attribution's cells equals a plain patched forward of each cell (the sweep's
 * batching and layer skipping change nothing), and compareWithExact's statistics: Pearson,
 * Spearman, top-k overlap and false negatives, checked on inputs whose answers are known.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'path';
import { Model } from '../../src/runtime/model';
import * as attribution from '../../src/methods/attribution';
import { Tensor } from '../../src/runtime/tensor';

const FIX = path.join(__dirname, '..', 'fixtures');
const pairs = [
  { clean: [191, 80, 91, 337, 439, 269, 332, 17, 250], corrupt: [191, 80, 11, 402, 439, 269, 332, 17, 250] },
  { clean: [5, 300, 12, 99, 41], corrupt: [5, 301, 77, 99, 41] },
];
const answers = [42, 7];

describe('agreement statistics', () => {
  it('Pearson, Spearman and ranks on known inputs', () => {
    expect(attribution.pearson([1, 2, 3, 4], [2, 4, 6, 8])).toBeCloseTo(1, 12);
    expect(attribution.pearson([1, 2, 3], [1, 3, 2])).toBeCloseTo(0.5, 12);
    expect(attribution.spearman([1, 2, 3, 4], [1, 8, 27, 1000])).toBeCloseTo(1, 12);
    expect(Array.from(attribution.ranks([10, 30, 20, 30]))).toEqual([1, 3.5, 2, 3.5]);
    expect(attribution.topIndices([0.1, -5, 3, 0], 2)).toEqual([1, 2]);
    expect(attribution.pearson([1, 1, 1], [1, 2, 3])).toBeNaN();
  });
});

for (const [fixture, kinds] of [
  ['tiny-mamba', ['resid_pre', 'mixer.ssm_out', 'mixer.dt']],
  ['tiny-neox', ['resid_post', 'attn.q', 'mlp.out']],
] as const) {
  describe(`exact patching on ${fixture}`, () => {
    let model: Model;
    beforeAll(async () => {
      model = await Model.load(path.join(FIX, fixture));
    });

    for (const direction of ['denoising', 'noising'] as const) {
      it(`${direction}: every effect equals a plain forward with that cell replaced`, async () => {
        const metric = attribution.logProbMetric(answers);
        const exact = await attribution.exactPatching(model, pairs, metric, { kinds: [...kinds], direction, batchSize: 7 });
        for (const [p, pair] of pairs.entries()) {
          const [base, source] = direction === 'denoising' ? [pair.corrupt, pair.clean] : [pair.clean, pair.corrupt];
          const baseValue = metric((await model.run([base], { logits: 'last' })).logits!.data, p).value;
          expect(exact[p].base).toBeCloseTo(baseValue, 5);
          for (const kind of kinds) for (const [layer, pos] of [[0, 1], [2, 3], [3, pair.clean.length - 1]]) {
            const hook = `layers.${layer}.${kind}`;
            const src = (await model.run([source], { cache: [hook] })).cache.get(hook);
            const heads = kind.startsWith('attn.');
            const res = await model.run([base], { logits: 'last', hooks: [[hook, (t: Tensor) => {
              const o = t.clone();
              const H = heads ? t.shape[1] : 1;
              const T = heads ? t.shape[2] : t.shape[1];
              const X = heads ? t.stride(2) : t.stride(1);
              for (let h = 0; h < H; h++) o.data.set(src.data.subarray((h * T + pos) * X, (h * T + pos + 1) * X), (h * T + pos) * X);
              return o;
            }]] });
            const effect = metric(res.logits!.data, p).value - baseValue;
            expect(Math.abs(exact[p].kinds[kind][layer][pos] - effect), `pair ${p} ${hook}@${pos}`).toBeLessThan(1e-4);
          }
        }
      });
    }

    it('compareWithExact: a perfect estimate agrees fully, a reversed ranking gives false negatives', async () => {
      const metric = attribution.logProbMetric(answers);
      const opts = { kinds: [kinds[0]], topK: 3 };
      const { table, estimates, exact } = await attribution.compareWithExact(model, pairs, metric, opts);
      const row = table.objects()[0] as Record<string, number>;
      expect(row.cells).toBe(model.nLayers * (pairs[0].clean.length + pairs[1].clean.length));
      expect(row.pearson).toBeGreaterThan(-1);
      expect(exact).toHaveLength(pairs.length);
      // compare the real estimates against themselves scaled: correlations 1, overlap 1
      const self = estimates.map((e) => ({ pair: e.pair, base: e.base, source: e.source, kinds: { [kinds[0]]: e.kinds[kinds[0]].estimate.map((r) => r.map((x) => 3 * x)) } }));
      const same = (await attribution.compareWithExact(model, pairs, metric, { ...opts, exact: self })).table.objects()[0] as Record<string, number>;
      expect(same.pearson).toBeCloseTo(1, 6);
      expect(same.spearman).toBeCloseTo(1, 6);
      expect(same.pearsonLo).toBeCloseTo(1, 6); // every resample of a perfect agreement is perfect
      expect(same.spearmanHi).toBeCloseTo(1, 6);
      expect(same.overlap).toBeCloseTo(1, 12);
      expect(same.falseNegatives).toBe(0);
      const flipped = estimates.map((e) => ({ pair: e.pair, base: e.base, source: e.source, kinds: { [kinds[0]]: e.kinds[kinds[0]].estimate.map((r) => r.map((x) => 1 / (1e-9 + Math.abs(x)))) } }));
      const bad = await attribution.compareWithExact(model, pairs, metric, { ...opts, exact: flipped });
      const badRow = bad.table.objects()[0] as Record<string, number>;
      expect(badRow.overlap).toBeLessThan(0.5);
      // The pair bootstrap's interval brackets the pooled correlation and has width (two pairs that disagree differently).
      for (const c of ['pearson', 'spearman']) {
        expect(badRow[`${c}Lo`]).toBeLessThanOrEqual(badRow[c] + 1e-12);
        expect(badRow[`${c}Hi`]).toBeGreaterThanOrEqual(badRow[c] - 1e-12);
        expect(badRow[`${c}Hi`] - badRow[`${c}Lo`]).toBeGreaterThan(1e-3);
      }
      expect(badRow.falseNegatives).toBe(bad.misses.numRows());
      expect(badRow.falseNegatives).toBeGreaterThan(0);
      // given estimates are used as they are: the flipped scores as estimates against themselves agree fully
      const given = flipped.map((f, i) => ({ ...estimates[i], kinds: { [kinds[0]]: { ...estimates[i].kinds[kinds[0]], estimate: f.kinds[kinds[0]] } } }));
      const selfAgain = (await attribution.compareWithExact(model, pairs, metric, { ...opts, exact: flipped, estimates: given })).table.objects()[0] as Record<string, number>;
      expect(selfAgain.pearson).toBeCloseTo(1, 6);
      await expect(attribution.compareWithExact(model, pairs, metric, { ...opts, kinds: ['resid_post', 'mixer.gate'], exact: flipped, estimates: given })).rejects.toThrow(/no kind/);
      // exact's largest cell is the estimate's second largest: a miss at k = 1, a hit at k = 2
      const second = estimates.map((e) => {
        const flat = e.kinds[kinds[0]].estimate.flat();
        const i = attribution.topIndices(flat, 2)[1];
        const T = e.kinds[kinds[0]].estimate[0].length;
        return { pair: e.pair, base: 0, source: 0, kinds: { [kinds[0]]: e.kinds[kinds[0]].estimate.map((r, l) => r.map((_, t) => (l * T + t === i ? 1 : 0))) } };
      });
      const at1 = await attribution.compareWithExact(model, pairs, metric, { ...opts, topK: 1, exact: second });
      expect(at1.table.objects()[0]).toMatchObject({ overlap: 0, falseNegatives: pairs.length });
      expect(at1.misses.array('estimateRank')).toEqual(pairs.map(() => 1));
      const at2 = await attribution.compareWithExact(model, pairs, metric, { ...opts, topK: 2, exact: second });
      expect((at2.misses.objects() as Array<Record<string, number>>).filter((m) => m.exactRank === 0)).toEqual([]);
    });
  });
}
