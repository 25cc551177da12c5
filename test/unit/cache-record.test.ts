/**
 * runWithCache with no names keeps every hook point (after a memory check that names its estimate),
 * and the cache reads as a plain record under any alias, throwing cache.get's error for unknown or
 * uncached names while ordinary property probes (then, toJSON, symbols) behave as on any object.
 */
import path from 'path';
import { inspect } from 'util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/runtime/model';
import { ActivationCache } from '../../src/runtime/cache';
import { allHookNames } from '../../src/runtime/hooks';
import { cacheBytes } from '../../src/runtime/cache-size';

const FIX = path.join(__dirname, '..', 'fixtures');
const ids = [3, 17, 42, 99, 5];

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

describe.each(['tiny-mamba', 'tiny-neox', 'tiny-gpt2', 'tiny-llama'])('cache of every hook point (%s)', (fixture) => {
  let model: Model;
  let cache: ActivationCache;

  beforeAll(async () => {
    model = await Model.load(path.join(FIX, fixture));
    cache = (await model.runWithCache([ids])).cache;
  });

  it('keeps every hook point, and the estimate equals the bytes it holds', () => {
    const all = allHookNames(model.arch, model.nLayers, model.parallelResidual);
    expect(cache.names.sort()).toEqual([...all].sort());
    expect(cacheBytes(model, model.batch([ids]), all)).toBe(cache.bytes);
  });

  it('refuses, naming the estimate, when it would not fit the budget', async () => {
    const need = cache.bytes;
    await expect(model.runWithCache([ids], undefined, { maxCacheBytes: need - 1 })).rejects.toThrow(
      new RegExp(`caching all ${cache.names.length} hook points of ${fixture} for a batch of 1×5 tokens needs about .*, over the budget of`),
    );
    await expect(model.runWithCache([ids], undefined, { maxCacheBytes: need })).resolves.toBeDefined();
  });

  it('indexes like a record under canonical names and aliases, equal to get()', () => {
    const canonical = 'layers.1.resid_post';
    for (const alias of [canonical, 'blocks.1.hook_resid_post', 'layers.1.hook_out']) expect(cache[alias as 'x.y']).toBe(cache.get(canonical));
    expect(cache['hook_embed']).toBe(cache.get('embed'));
    // Hugging Face module paths, as docs/coming-from-transformerlens.md shows them.
    expect(cache[`${model.arch === 'mamba' ? 'backbone' : 'gpt_neox'}.layers.1`]).toBe(cache.get(canonical));
    if (model.arch === 'gpt_neox') expect(cache['gpt_neox.layers.1.mlp']).toBe(cache.get('layers.1.mlp.out'));
    expect((cache as unknown as Record<string, unknown>).logits).toBe(cache.get('logits'));
    expect((cache as unknown as Record<string, unknown>).embed).toBe(cache.get('embed'));
    expect('layers.1.resid_post' in cache).toBe(true);
  });

  it('throws get()\'s one-line error for unknown and uncached names (never undefined)', async () => {
    expect(() => cache['blocks.1.hook_nonsense']).toThrow(errorOf(() => cache.get('blocks.1.hook_nonsense')));
    expect(errorOf(() => cache['blocks.1.hook_nonsense'])).toMatch(/^unknown hook "blocks.1.hook_nonsense"/);
    expect(() => cache[`layers.${model.nLayers}.resid_post`]).toThrow(/out of range/);
    const partial = (await model.runWithCache([ids], ['layers.0.resid_post'])).cache;
    expect(() => partial['layers.1.resid_post']).toThrow(errorOf(() => partial.get('layers.1.resid_post')));
    expect(errorOf(() => partial['layers.1.resid_post'])).toMatch(/^activation "layers.1.resid_post" was not cached; this run kept: layers.0.resid_post$/);
    expect('layers.1.resid_post' in partial).toBe(false);
  });

  it('ordinary probes see a plain object: then, toJSON, symbols, unknown plain names', async () => {
    const probe = cache as unknown as Record<string | symbol, unknown>;
    for (const p of ['then', 'toJSON', 'asymmetricMatch', '$$typeof', 'nodeType', 'constructor2']) expect(probe[p]).toBeUndefined();
    expect(probe[Symbol.iterator]).toBeUndefined();
    expect(probe[Symbol.toStringTag]).toBeUndefined();
    expect(await Promise.resolve(cache)).toBe(cache); // not a thenable
    expect(cache).toBe(cache); // vitest's matchers probe it
    expect(JSON.stringify({ n: 1, c: cache }).length).toBeGreaterThan(0);
  });

  it('shows as one line in notebooks (util.inspect), with hook count and size', () => {
    const shown = inspect(cache);
    expect(shown).not.toContain('\n');
    expect(shown).toMatch(new RegExp(`^ActivationCache\\(${model.arch}, ${cache.names.length} hooks, [0-9.]+ (KiB|MiB): embed \\[1,5,`));
  });
});
