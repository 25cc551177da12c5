// Causal tracing keeps only informative facts: a trace whose clean top-1 is not the fact's object is
// 'not-known' (no IE, left out of AIE) and says so in its heatmap's title; with the right object the same
// trace is 'ok'; a threshold above the corruption's drop in p(answer) makes it 'small-gap'.
import path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { altSubjectCorruption, averageIndirectEffects, traceHeatmaps, traceMany } from '../../src/methods/causal-tracing';

const DEMO = path.join(__dirname, '..', '..', 'data', 'models', 'mamba-facts');

describe('causal tracing status', () => {
  let model: Model;
  beforeAll(async () => { model = await Model.load(DEMO); });

  it('flags facts the model does not answer with their object, and corruptions below the threshold', async () => {
    const base = altSubjectCorruption(model, 'The capital city of {} is', 'Japan', 'France');
    const opts = { kinds: ['residual' as const], layers: [4, 8] };
    const [[right], [wrong]] = await traceMany(model, [{ ...base, object: 'Tokyo' }, { ...base, object: 'Paris' }], opts);
    expect(right.answer.trim()).toBe('Tokyo');
    expect(right.status).toBe('ok');
    expect(right.ie.flat().every(Number.isFinite)).toBe(true);
    expect(wrong.status).toBe('not-known');
    expect(wrong.ie.flat().every(Number.isNaN)).toBe(true);
    // The raw probabilities are kept (the same trace; batched rows agree to float32 rounding).
    wrong.p.flat().forEach((x, i) => expect(Math.abs(x - right.p.flat()[i])).toBeLessThan(1e-4));
    expect(traceHeatmaps([wrong]).layout.title.text).toContain('NOT-KNOWN');
    expect(traceHeatmaps([right]).layout.title.text).not.toContain('NOT-KNOWN');
    const aie = averageIndirectEffects([right, wrong]);
    expect([aie.count, aie.excluded]).toEqual([1, 1]);

    const gap = right.high - right.low;
    const [[strict]] = await traceMany(model, [{ ...base, object: 'Tokyo' }], { ...opts, minGap: gap + 0.01 });
    expect(strict.status).toBe('small-gap');
  }, 120_000);
});
