/** The generated hook reference is current, and every alias it lists resolves to its canonical name. */
import { describe, expect, it } from 'vitest';
import fs from 'fs';
import path from 'path';
import { hookTableMarkdown } from '../../src/runtime/hook-table';
import { aliasesOf, hookDocs, resolveHook } from '../../src/runtime/hooks';

describe('hook reference', () => {
  it('docs/hooks.md is what `npm run docs` generates', () => {
    expect(fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'hooks.md'), 'utf8')).toBe(hookTableMarkdown());
  });

  const HF_PREFIX = { mamba: 'backbone.layers.3.', gpt_neox: 'gpt_neox.layers.3.', gpt2: 'transformer.h.3.', llama: 'model.layers.3.', qwen3: 'model.layers.3.' } as const;
  for (const arch of ['mamba', 'gpt_neox', 'gpt2', 'llama', 'qwen3'] as const) {
    it(`${arch}: every alias resolves to its canonical hook, with every accepted prefix`, () => {
      for (const d of hookDocs(arch, false)) {
        for (const alias of [d.local, ...aliasesOf(arch, d.local)]) {
          if (d.perLayer) {
            for (const prefix of ['layers.3.', 'blocks.3.', HF_PREFIX[arch]]) {
              expect(resolveHook(prefix + alias, arch, 8, false).name).toBe(`layers.3.${d.local}`);
            }
          } else {
            expect(resolveHook(alias, arch, 8, false).name).toBe(d.local);
          }
        }
      }
      expect(resolveHook('layers.5', arch, 8, false).name).toBe('layers.5.resid_post');
    });
  }

  it('parallel-residual GPT-NeoX has no resid_mid', () => {
    expect(() => resolveHook('layers.1.resid_mid', 'gpt_neox', 4, true)).toThrow(/unknown hook/);
    expect(resolveHook('layers.1.hook_resid_mid', 'gpt_neox', 4, false).name).toBe('layers.1.resid_mid');
  });
});
