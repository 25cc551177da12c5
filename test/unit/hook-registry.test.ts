/**
 * The hook registry is complete, per architecture: every hook point a model declares (MAMBA_HOOKS,
 * NEOX_HOOKS and TRANSFORMER_HOOKS for each adapter-table fixture) is produced by its graphs with the declared shape, and every point the graphs produce
 * is declared. Plus the deprecated alias `hook_ssm_out` (o, not s): it still resolves, and warns once.
 */
import path from 'path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Model } from '../../src/runtime/model';
import { stageLayout, StageDef } from '../../src/runtime/stage';
import { allHookNames, hookDocs, resolveHook } from '../../src/runtime/hooks';
import { mambaLayerStage } from '../../src/models/mamba';
import { transformerLayerStage } from '../../src/models/transformer';
import { mamba2LayerStage, mamba2ShapeLetters } from '../../src/models/mamba2';

const FIX = path.join(__dirname, '..', 'fixtures');

/** Hook points a stage's graph creates (its dry-built layout, host ops left out). */
const created = (def: StageDef) => stageLayout(def, { states: true }).order.filter((n) => !n.startsWith('host:'));

/** A declared shape such as "[B,H,T,Dh]" with its letters replaced by this run's sizes. */
function resolveShape(shape: string, sizes: Record<string, number>): number[] {
  return shape.slice(1, -1).split(',').map((letter) => {
    expect(sizes[letter], `shape letter ${letter}`).toBeDefined();
    return sizes[letter];
  });
}

for (const fixture of ['tiny-mamba', 'tiny-falcon-mamba', 'tiny-mamba2', 'tiny-neox', 'tiny-gpt2', 'tiny-llama', 'tiny-mistral', 'tiny-qwen2', 'tiny-qwen3']) {
  describe(`hook registry: ${fixture}`, () => {
    it('every declared point is produced with its declared shape, and every produced point is declared', async () => {
      const model = await Model.load(path.join(FIX, fixture));
      const docs = hookDocs(model.arch, model.parallelResidual);
      const declaredLayer = docs.filter((d) => d.perLayer).map((d) => d.local);
      const declaredModel = docs.filter((d) => !d.perLayer).map((d) => d.local);
      // What the graphs create: the layer stage, the head stage, and `embed` (the token lookup before layer 0).
      expect(new Set(created(model.layerStage))).toEqual(new Set(declaredLayer));
      expect(new Set(['embed', ...created(model.headStage)])).toEqual(new Set(declaredModel));

      const T = 5;
      const ids = [[3, 17, 250, 9, 41], [88, 2, 7, 201, 5]]; // B = 2, equal lengths (no padding); ids < 256, the smallest vocab
      const res = await model.runWithCache(ids, allHookNames(model.arch, model.nLayers, model.parallelResidual));
      const c = model.config;
      const sizes: Record<string, number> = c.arch === 'mamba'
        ? { B: 2, T, P: T, D: c.dModel, E: c.dInner, N: c.dState, V: c.vocabSize }
        : c.arch === 'mamba2'
          ? { B: 2, T, P: T, D: c.dModel, V: c.vocabSize, ...mamba2ShapeLetters(c) }
          : c.arch === 'gpt_neox'
            ? { B: 2, T, P: T, D: c.dModel, H: c.nHead, Hkv: c.nHead, Dh: c.headDim, HDh: c.dModel, F: c.dFF, V: c.vocabSize }
            : { B: 2, T, P: T, D: c.dModel, H: c.nHead, Hkv: c.nKvHeads, Dh: c.headDim, HDh: c.nHead * c.headDim, F: c.dFF, V: c.vocabSize };
      for (const d of docs) {
        const names = d.perLayer ? Array.from({ length: model.nLayers }, (_, l) => `layers.${l}.${d.local}`) : [d.local];
        for (const n of names) expect(res.cache.get(n).shape, n).toEqual(resolveShape(d.shape, sizes));
      }
    });
  });
}

describe('hook registry: configurations a fixture does not have', () => {
  it('sequential-residual GPT-NeoX creates resid_mid, parallel does not; the native and ONNX Mamba scans create the same points', async () => {
    const neox = await Model.load(path.join(FIX, 'tiny-neox'));
    const layerPoints = (parallel: boolean) => hookDocs('gpt_neox', parallel).filter((d) => d.perLayer).map((d) => d.local);
    const sequential = transformerLayerStage({ ...neox.neoxConfig, parallelResidual: false });
    expect(new Set(created(sequential))).toEqual(new Set(layerPoints(false)));
    expect(created(sequential)).toContain('resid_mid');
    expect(created(neox.layerStage)).not.toContain('resid_mid');
    const mamba = await Model.load(path.join(FIX, 'tiny-mamba'));
    expect(created(mambaLayerStage(mamba.mambaConfig, true))).toEqual(created(mambaLayerStage(mamba.mambaConfig, false)));
    const mamba2 = await Model.load(path.join(FIX, 'tiny-mamba2'));
    expect(created(mamba2LayerStage(mamba2.mamba2Config, true))).toEqual(created(mamba2LayerStage(mamba2.mamba2Config, false)));
  });
});

describe('deprecated aliases', () => {
  afterEach(() => vi.restoreAllMocks());

  it('hook_ssm_out still means mixer.out (o), warns once naming the replacements; hook_ssm_output is s', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(resolveHook('layers.2.hook_ssm_out', 'mamba', 4).name).toBe('layers.2.mixer.out');
    expect(resolveHook('blocks.3.hook_ssm_out', 'mamba', 4).name).toBe('layers.3.mixer.out');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(/hook_ssm_out.*deprecated.*hook_out_proj.*mixer\.ssm_out/);
    expect(resolveHook('layers.2.hook_ssm_output', 'mamba', 4).name).toBe('layers.2.mixer.ssm_out');
    expect(resolveHook('layers.2.ssm_out', 'mamba', 4).name).toBe('layers.2.mixer.ssm_out');
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
