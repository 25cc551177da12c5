// Every notebook runs top to bottom headlessly through Jupyter with the tslab kernel (npm run
// notebooks), and the runner really fails on a cell error: a TypeScript type error, a throw, and a
// library error, which must display as one readable line.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { parseCells, toNotebook } from '../../scripts/build-notebooks';

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'out', 'test', 'notebooks');
const MINUTES = 60_000;

function jupyterMissing(): string | null {
  const kernel = path.join(ROOT, '.jupyter', 'data', 'kernels', 'tslab', 'kernel.json');
  if (!fs.existsSync(kernel)) return `no project-local tslab kernel spec (${kernel})`;
  if (!fs.existsSync(path.join(ROOT, '.venv/bin/jupyter-nbconvert')) && !fs.existsSync('/usr/bin/jupyter-nbconvert')) {
    return 'no Jupyter (.venv or Debian nbconvert)';
  }
  return null;
}

const missing = jupyterMissing();
const required = Boolean(process.env.CI || process.env.FACTLENS_REQUIRE_BROWSER);
if (missing && !required) {
  console.warn(`\n!!! SKIPPING notebook execution tests: ${missing}. Run 'bash scripts/setup.sh'.\n`);
}
const itJupyter = missing && !required ? it.skip : it;

function runNotebooks(args: string[], out: string) {
  if (missing) throw new Error(`cannot run notebooks: ${missing}. Run 'bash scripts/setup.sh'.`);
  const r = spawnSync('bash', ['scripts/notebooks.sh', ...args], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, FACTLENS_SKIP_BUILD: '1', FACTLENS_NB_QUICK: '1', FACTLENS_NOTEBOOK_OUT: out },
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

describe('notebook sources', () => {
  it('notebooks/*.ipynb are built from notebooks/src/*.nb.ts (npm run build-notebooks)', () => {
    const r = spawnSync(path.join(ROOT, 'node_modules/.bin/tsx'), ['scripts/build-notebooks.ts', '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr, r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the library compiles with tslab\'s own TypeScript 5.0', () => {
    const tsc = path.join(ROOT, 'node_modules/@tslab/typescript-for-tslab/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', 'kernel-config/tsconfig.tslab.json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 2 * MINUTES);
});

describe('npm run notebooks', () => {
  itJupyter('fails on a type error, a throw and a library error, naming notebook and cell', () => {
    const dir = path.join(OUT, 'probes');
    fs.mkdirSync(dir, { recursive: true });
    const write = (name: string, src: string) => {
      fs.writeFileSync(path.join(dir, `${name}.ipynb`), toNotebook(name, parseCells(src)));
      return path.join(dir, `${name}.ipynb`);
    };
    const typeError = write('type-error', "// %%\nconst ok = 1;\n// %%\nconst n: number = 'seven';\n");
    const throws = write('throws', "// %%\nconsole.log('fine');\n// %%\nJSON.parse('{');\n");
    const library = write('library-error', [
      '// %%', "import { FactlensError } from '../../../../src/errors';",
      '// %%', "throw new FactlensError('no model at /nowhere');",
    ].join('\n'));
    const r = runNotebooks([typeError, throws, library], path.join(OUT, 'probes-run'));
    expect(r.status, r.output).toBe(1);
    expect(r.output).toContain(`FAILED ${typeError}, cell 2 of 2 (code cell 2): const n: number = 'seven';`);
    expect(r.output).toContain("Type 'string' is not assignable to type 'number'.");
    expect(r.output).toContain(`FAILED ${throws}, cell 2 of 2`);
    expect(r.output).toContain('SyntaxError');
    // The library error is one readable line, no stack.
    expect(r.output).toMatch(/cell 2 of 2 \(code cell 2\): throw new FactlensError\('no model at \/nowhere'\);\nFactlensError: no model at \/nowhere\n/);
    expect(r.output).not.toMatch(/FactlensError: no model[^\n]*\n\s+at /);
  }, 5 * MINUTES);

  itJupyter('runs every notebook without a cell error and exports it', () => {
    const out = path.join(ROOT, 'out', 'notebooks');
    const r = runNotebooks([], out);
    console.log(r.output);
    expect(r.status, r.output).toBe(0);
    const names = fs.readdirSync(path.join(ROOT, 'notebooks')).filter((f) => f.endsWith('.ipynb'));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      expect(fs.existsSync(path.join(out, name))).toBe(true);
      expect(fs.existsSync(path.join(out, name.replace(/\.ipynb$/, '.html')))).toBe(true);
    }
    // The quickstart shows a figure (HTML + attached plotly JSON) and a table.
    const nb = JSON.parse(fs.readFileSync(path.join(out, '00-quickstart.ipynb'), 'utf8'));
    const outputs = nb.cells.flatMap((c: { outputs?: unknown[] }) => c.outputs ?? []) as Array<{ data?: Record<string, unknown> }>;
    const figs = outputs.filter((o) => o.data?.['application/vnd.plotly.v1+json']);
    expect(figs.length).toBeGreaterThan(0);
    expect(String(figs[0].data?.['text/html'])).toContain('Plotly.newPlot');
    expect(outputs.some((o) => String(o.data?.['text/html'] ?? '').includes('<table'))).toBe(true);
    // Saved with every output, a notebook stays small: figures are JSON, plotly.js is never inlined.
    for (const name of names) {
      const text = fs.readFileSync(path.join(out, name), 'utf8');
      console.log(`${name}: ${(text.length / 1024).toFixed(0)} KB executed`);
      expect(text.length, name).toBeLessThan(1024 * 1024);
      expect(text, name).not.toContain('plotly.js v');
    }
  }, 50 * MINUTES);
});
