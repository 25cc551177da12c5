// Converts notebook sources notebooks/src/<name>.nb.ts into notebooks/<name>.ipynb (no outputs, tslab
// kernelspec). Sources are plain TypeScript in jupytext's "percent" format, so they diff and review
// like code:
//
//   // %% [markdown]
//   // # A title            <- markdown cell: every line starts with `//` (stripped with one space),
//   // Some *text*.            or the whole cell is one /* ... */ block comment
//
//   // %%                  <- code cell (text after `// %%` is a title, ignored)
//   import { heatmap } from '../src/viz';   // paths are relative to notebooks/, where the kernel runs
//
// Usage: tsx scripts/build-notebooks.ts [--check] [name ...]
//   --check: write nothing; exit 1 if a notebooks/*.ipynb is missing or differs from its source.
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const SRC_DIR = path.join(ROOT, 'notebooks', 'src');
const OUT_DIR = path.join(ROOT, 'notebooks');
const MARKER = /^\/\/ %%(.*)$/;

interface Cell { kind: 'markdown' | 'code'; lines: string[] }

/** Splits a .nb.ts source at `// %%` markers; text before the first marker is dropped (a file header). */
export function parseCells(source: string): Cell[] {
  const cells: Cell[] = [];
  for (const line of source.replace(/\r\n/g, '\n').split('\n')) {
    const m = MARKER.exec(line);
    if (m) cells.push({ kind: /\[markdown\]/.test(m[1]) ? 'markdown' : 'code', lines: [] });
    else if (cells.length) cells[cells.length - 1].lines.push(line);
  }
  return cells.map((c) => ({ ...c, lines: trimBlank(c.kind === 'markdown' ? markdownLines(c.lines) : c.lines) }))
    .filter((c) => c.lines.length > 0);
}

function trimBlank(lines: string[]): string[] {
  let a = 0, b = lines.length;
  while (a < b && lines[a].trim() === '') a++;
  while (b > a && lines[b - 1].trim() === '') b--;
  return lines.slice(a, b);
}

function markdownLines(lines: string[]): string[] {
  const body = trimBlank(lines);
  const text = body.join('\n');
  if (text.startsWith('/*') && text.endsWith('*/')) {
    return text.slice(2, -2).split('\n').map((l) => l.replace(/^ \* ?/, ''));
  }
  return body.map((l) => {
    if (l.trim() === '') return '';
    if (!/^\s*\/\//.test(l)) throw new Error(`markdown cell line is not a // comment: ${JSON.stringify(l)}`);
    return l.replace(/^\s*\/\/ ?/, '');
  });
}

// The committed form (no outputs, the kernel's metadata) is defined once, by the git clean filter.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const nbClean = require('./nb-clean.js') as { cleanNotebook(nb: object): object; serialize(nb: object): string };

/** The .ipynb JSON (nbformat 4.5) for a list of cells; deterministic so --check can compare bytes. */
export function toNotebook(name: string, cells: Cell[]): string {
  return nbClean.serialize(nbClean.cleanNotebook({
    cells: cells.map((c, i) => ({
      cell_type: c.kind,
      id: `${name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 50)}-${i}`,
      source: c.lines.map((l, j) => (j < c.lines.length - 1 ? l + '\n' : l)),
    })),
  }));
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const wanted = argv.filter((a) => !a.startsWith('--')).map((a) => a.replace(/(\.nb\.ts|\.ipynb)$/, ''));
  const names = fs.readdirSync(SRC_DIR).filter((f) => f.endsWith('.nb.ts')).map((f) => f.slice(0, -'.nb.ts'.length))
    .filter((n) => wanted.length === 0 || wanted.includes(n)).sort();
  let stale = 0;
  for (const name of names) {
    const json = toNotebook(name, parseCells(fs.readFileSync(path.join(SRC_DIR, `${name}.nb.ts`), 'utf8')));
    const target = path.join(OUT_DIR, `${name}.ipynb`);
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null;
    if (current === json) continue;
    if (check) {
      console.error(`${path.relative(ROOT, target)} is ${current === null ? 'missing' : 'out of date'}: run npm run build-notebooks`);
      stale++;
    } else {
      fs.writeFileSync(target, json);
      console.log(`wrote ${path.relative(ROOT, target)}`);
    }
  }
  return stale > 0 ? 1 : 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
