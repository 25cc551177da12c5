// The README's tour runs as written: every ```ts block of README.md, in order, as the cells of one
// notebook in notebooks/ (test/support/run-cells.cjs: tslab's own compiler and executor, as the kernel runs them).
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCells } from '../support/tslab-cells';

/** The fenced ```ts blocks of a markdown text. */
export function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

describe('README tour', () => {
  const blocks = tsBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));

  it('has TypeScript blocks to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    expect(tsBlocks('x\n```ts\nconst a = 1;\n```\n```bash\nls\n```\n')).toEqual(['const a = 1;\n']);
  });

  it('every block runs without an error, in order, as notebook cells', () => {
    const r = runCells(blocks);
    expect(r.output, r.output).not.toContain('FAILED');
    expect(r.status, r.output).toBe(0);
  }, 15 * 60_000);
});
