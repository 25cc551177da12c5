// Library calls take { signal }: an aborted signal stops a call before its next batch with a one-line
// InterruptedError, and the model works normally afterwards.
import path from 'path';
import { inspect } from 'util';
import { beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError, knownFacts, loadRelations, Model } from '../../src';

const DEMO = path.join(__dirname, '..', '..', 'data', 'models', 'mamba-facts');

describe('AbortSignal', () => {
  let model: Model;
  beforeAll(async () => { model = await Model.load(DEMO); });

  it('stops a call at the batch after the abort, with one line, and leaves the model usable', async () => {
    const ctrl = new AbortController();
    const batches: number[] = [];
    const run = knownFacts(model, loadRelations(['country_capital_city', 'person_plays_pro_sport']), {
      batchSize: 4, signal: ctrl.signal, onProgress: (done) => { batches.push(done); if (batches.length === 2) ctrl.abort(); },
    });
    const err = await run.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect(inspect(err)).toBe('InterruptedError: interrupted (signal aborted)');
    expect(batches).toEqual([4, 8]); // no batch ran after the abort
    const ids = model.encode('The capital city of France is');
    expect((await model.logits([ids], { last: true })).shape[0]).toBe(1);
  }, 60_000);

  it('model.run refuses an already aborted signal before any work', async () => {
    const err = await model.run([model.encode('Paris')], { signal: AbortSignal.abort(new Error('user cancelled')) }).then(() => null, (e: unknown) => e);
    expect(inspect(err)).toBe('InterruptedError: interrupted (signal aborted: user cancelled)');
  });
});
