// Run TypeScript cells the way the tslab kernel does (test/support/run-cells.cjs), in a child process whose
// working directory is notebooks/, so `../src` and `../data/...` resolve as in a notebook.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface CellsRun {
  status: number | null;
  output: string;
  /** Per cell, the printed last-expression values (what a notebook shows as the cell's result). */
  shown: string[][];
  /** Per cell, its display data (markdown, tables, figures) as [mime type, content]. */
  displayed: Array<Array<[string, string]>>;
}

export function runCells(cells: string[], env: Record<string, string> = {}): CellsRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-cells-'));
  try {
    const file = path.join(dir, 'cells.json');
    fs.writeFileSync(file, JSON.stringify(cells));
    const r = spawnSync(process.execPath, [path.join(ROOT, 'test', 'support', 'run-cells.cjs'), file], {
      cwd: path.join(ROOT, 'notebooks'), encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20,
    });
    const shown: string[][] = cells.map(() => []);
    for (const m of r.stdout.matchAll(/^OUT (\d+) (.*)$/gm)) shown[Number(m[1])].push(m[2]);
    const displayed: Array<Array<[string, string]>> = cells.map(() => []);
    for (const m of r.stdout.matchAll(/^DISPLAY (\d+) (\S+) (.*)$/gm)) displayed[Number(m[1])].push([m[2], m[3].replace(/\\n/g, '\n')]);
    return { status: r.status, output: `${r.stdout}\n${r.stderr}`, shown, displayed };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
