// What a user sees: JupyterLab on loopback, the quickstart notebook opened in Chromium (Playwright).
// Saving it unchanged leaves the file byte-identical; Run > Run All Cells, then every cell must have
// run without error output, and at least one plotly chart (drawn by JupyterLab's plotly renderer from
// the figure's JSON) and one HTML table must be on the page. Then the ways charts used to go blank:
// reload the page and re-run a figure cell; a second notebook on the same kernel; a kernel restart.
// Screenshots go to out/test/. Without Chromium or JupyterLab this fails under CI /
// FACTLENS_REQUIRE_BROWSER and otherwise skips loudly.
import { ChildProcess, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { chromium, Browser, Page } from 'playwright-core';
import { parseCells, toNotebook } from '../../scripts/build-notebooks';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'out', 'test');
const CHROMIUM = '/usr/bin/chromium';
const LAB = path.join(ROOT, '.venv', 'bin', 'jupyter-lab');
const KERNEL = path.join(ROOT, '.jupyter', 'data', 'kernels', 'tslab', 'kernel.json');
const NOTEBOOK = '00-quickstart.ipynb';
// A second notebook for the quickstart's kernel; its imports are relative to notebooks/, the kernel's folder.
const SECOND = 'out/test/second-notebook.ipynb';
const SECOND_SOURCE = "// %%\nimport { lineChart, showFigure } from '../src/viz';\nshowFigure(lineChart([{ name: 'y', x: [0, 1], y: [1, 3] }], { title: 'second notebook' }));\n";
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function missingPieces(): string[] {
  return [[CHROMIUM, 'Chromium'], [LAB, 'JupyterLab (.venv)'], [KERNEL, 'the tslab kernel spec']]
    .filter(([p]) => !fs.existsSync(p)).map(([p, what]) => `${what} at ${p}`);
}

const missing = missingPieces();
const required = Boolean(process.env.CI || process.env.FACTLENS_REQUIRE_BROWSER);
if (missing.length && !required) {
  console.warn(`\n!!! SKIPPING the browser test: missing ${missing.join(', ')}. Run 'bash scripts/setup.sh' (as root for Chromium).\n`);
}
const itBrowser = missing.length && !required ? it.skip : it;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

let lab: ChildProcess | undefined;
let browser: Browser | undefined;

/** Kills the server's whole process group (jupyter-lab and its kernels), TERM then KILL. */
async function stopLab(): Promise<void> {
  const p = lab;
  lab = undefined;
  if (!p?.pid || p.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  try { process.kill(-p.pid, 'SIGTERM'); } catch { return; }
  const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000));
  if ((await Promise.race([exited.then(() => true), timer])) === false) {
    try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

afterAll(async () => {
  await browser?.close().catch(() => {});
  await stopLab();
});

/** Starts JupyterLab with the project env (scripts/env.sh) on a free loopback port; resolves when it answers. */
async function startLab(settingsDir: string): Promise<string> {
  const port = await freePort();
  const token = crypto.randomBytes(16).toString('hex');
  const log = fs.openSync(path.join(OUT, 'jupyterlab.log'), 'w');
  // A fresh workspace each run: a restored one would reopen (and start kernels for) an earlier run's tabs.
  const workspaces = path.join(OUT, 'lab-workspaces');
  fs.rmSync(workspaces, { recursive: true, force: true });
  const cmd = `source scripts/env.sh && export JUPYTERLAB_SETTINGS_DIR=${JSON.stringify(settingsDir)} JUPYTERLAB_WORKSPACES_DIR=${JSON.stringify(workspaces)} && exec ${JSON.stringify(LAB)} --no-browser --allow-root --ip=127.0.0.1 --port=${port} --ServerApp.port_retries=0 --IdentityProvider.token=${token} --notebook-dir=.`;
  lab = spawn('bash', ['-c', cmd], { cwd: ROOT, detached: true, stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 120; i++) {
    if (lab.exitCode !== null) throw new Error(`jupyter-lab exited (${lab.exitCode}); see out/test/jupyterlab.log`);
    try {
      const r = await fetch(`${base}/api/kernelspecs?token=${token}`);
      if (r.ok) {
        const specs = (await r.json()) as { kernelspecs: Record<string, unknown> };
        if (!specs.kernelspecs.tslab) throw new Error('JupyterLab does not list the tslab kernel');
        return `${base}/lab/tree/notebooks/${NOTEBOOK}?token=${token}`;
      }
    } catch (e) {
      if (String(e).includes('tslab')) throw e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('JupyterLab did not answer within 60 s; see out/test/jupyterlab.log');
}

/** The execution state of the quickstart's kernel, from the server's sessions API. */
async function kernelState(notebookUrl: string): Promise<string> {
  const u = new URL(notebookUrl);
  try {
    const r = await fetch(`${u.origin}/api/sessions?token=${u.searchParams.get('token')}`);
    const sessions = (await r.json()) as Array<{ path: string; kernel?: { name: string; execution_state: string } }>;
    const s = sessions.find((x) => x.path.endsWith(NOTEBOOK));
    return s?.kernel ? `${s.kernel.name === 'tslab' ? '' : s.kernel.name + ' '}${s.kernel.execution_state}` : 'no session';
  } catch (e) {
    return String(e);
  }
}

/** In the page (a string: the tests compile without DOM types): 'error: ...', 'running n/m' or 'done'. */
const RUN_STATUS_JS = `(() => {
  // Only the notebook on show: another tab's cells are in the DOM too, hidden.
  const shown = (sel) => Array.from(document.querySelectorAll(sel)).filter((e) => e.offsetParent !== null);
  const stderr = shown('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')[0];
  if (stderr) return 'error: ' + stderr.textContent;
  const prompts = shown('.jp-CodeCell .jp-InputPrompt');
  const done = prompts.filter((p) => /\\[\\d+\\]/.test(p.textContent || '')).length;
  return done === prompts.length ? 'done' : 'running ' + done + '/' + prompts.length;
})()`;

/** The server's REST API, with the token of a page URL. */
async function api(pageUrl: string, route: string, init?: { method: string; body?: string }): Promise<unknown> {
  const u = new URL(pageUrl);
  const r = await fetch(`${u.origin}/api/${route}?token=${u.searchParams.get('token')}`, { headers: { 'Content-Type': 'application/json' }, ...init });
  if (!r.ok) throw new Error(`${init?.method ?? 'GET'} /api/${route}: ${r.status}`);
  return r.status === 204 ? null : r.json();
}

/** Charts drawn in the notebook on show: the plotly renderer's output (itself .js-plotly-plot) with the svg it draws. */
const CHARTS_JS = `Array.from(document.querySelectorAll('.jp-OutputArea-child .js-plotly-plot'))
  .filter((e) => e.offsetParent !== null && e.querySelector('.main-svg')).length`;

function chartsDrawn(page: Page): Promise<number> {
  return page.evaluate(CHARTS_JS) as Promise<number>;
}

/** Waits up to a minute for a chart to appear; the number drawn then. */
async function waitForChart(page: Page): Promise<number> {
  await expect.poll(() => chartsDrawn(page), { timeout: 60_000, interval: 500 }).toBeGreaterThan(0).catch(() => {});
  return chartsDrawn(page);
}

/** Run > Run All Cells; resolves when every code cell shows an execution count, or one printed to stderr. */
async function runAll(page: Page): Promise<string> {
  await page.locator('.lm-MenuBar-itemLabel', { hasText: /^Run$/ }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Run All Cells$/ }).click();
  const progress = () => page.evaluate(RUN_STATUS_JS) as Promise<string>;
  await expect.poll(progress, { timeout: 300_000, interval: 1000 }).toMatch(/^(done|error)/);
  return progress();
}

/** Opens a notebook page and waits until its kernel is idle in the server and in the status bar. */
async function openNotebook(page: Page, url: string, kernelReady: () => Promise<string>): Promise<void> {
  await page.goto(url);
  await page.locator('.jp-Notebook .jp-Cell').first().waitFor({ timeout: 60_000 });
  await expect.poll(kernelReady, { timeout: 180_000, interval: 500 }).toBe('idle');
  await page.getByText('TypeScript (factlens) | Idle').waitFor({ timeout: 60_000 });
}

describe('JupyterLab in Chromium', () => {
  itBrowser('runs the quickstart, shows charts after a reload, takes a changed prompt, and shows charts in a second notebook and after a kernel restart', async () => {
    if (missing.length) throw new Error(`browser test needs ${missing.join(', ')}: run 'bash scripts/setup.sh' as root`);
    fs.mkdirSync(OUT, { recursive: true });
    // Autosave off: running cells must not write outputs into the committed notebook. Windowing off:
    // every cell stays in the DOM, so the checks below see the outputs below the fold too.
    const settings = path.join(OUT, 'lab-settings');
    const setting = (plugin: string, value: object) => {
      fs.mkdirSync(path.join(settings, '@jupyterlab', plugin.split(':')[0]), { recursive: true });
      fs.writeFileSync(path.join(settings, '@jupyterlab', plugin.split(':')[0], `${plugin.split(':')[1]}.jupyterlab-settings`), JSON.stringify(value));
    };
    setting('docmanager-extension:plugin', { autosave: false });
    setting('notebook-extension:tracker', { windowingMode: 'none' });
    fs.writeFileSync(path.join(ROOT, SECOND), toNotebook('second', parseCells(SECOND_SOURCE)));
    const before = fs.readFileSync(path.join(ROOT, 'notebooks', NOTEBOOK), 'utf8');
    const t0 = Date.now();
    const url = await startLab(settings);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const consoleErrors: string[] = [];
    const newPage = async () => {
      const p = await browser!.newPage({ viewport: { width: 1280, height: 2200 } });
      // JupyterLab's debugger panel complains that tslab has no debugger; anything else counts.
      p.on('pageerror', (e) => { if (!/debugger/i.test(String(e))) consoleErrors.push(String(e)); });
      return p;
    };
    let page = await newPage();
    const seen: Record<string, number> = {};
    let status = '', savedUnchanged = '';
    try {
      await openNotebook(page, url, () => kernelState(url));
      // Saving an untouched notebook writes the same bytes (its metadata is what the kernel reports).
      await page.locator('.jp-Notebook .jp-Cell').first().click();
      await page.keyboard.press('Control+s');
      await page.waitForTimeout(2000);
      savedUnchanged = fs.readFileSync(path.join(ROOT, 'notebooks', NOTEBOOK), 'utf8');

      status = await runAll(page);
      seen.runAll = await waitForChart(page);
      seen.tables = await page.locator('.jp-OutputArea-output table.factlens-table').count();
      await page.screenshot({ path: path.join(OUT, 'browser-quickstart.png') });

      // Reload: outputs are gone (not saved); re-running one figure cell on the same kernel draws it.
      await openNotebook(page, url, () => kernelState(url));
      expect(await chartsDrawn(page)).toBe(0);
      const figureCell = page.locator('.jp-CodeCell', { hasText: "title: 'Logit lens, Mamba'" });
      await figureCell.locator('.cm-content').click();
      await page.keyboard.press('Shift+Enter');
      seen.afterReload = await waitForChart(page);

      // Change a prompt and re-run (what a researcher does all day): the FACT cell gets a new prompt, then the
      // next-token cell below it is re-run; its table must be about the new prompt.
      const factCell = page.locator('.jp-CodeCell', { hasText: 'const FACT:' });
      await factCell.locator('.cm-content').click();
      await page.keyboard.press('Control+End');
      await page.keyboard.type("\nFACT.prompt = 'The capital city of Germany is';\nFACT.subject = 'Germany';");
      await page.keyboard.press('Shift+Enter');
      await page.locator('.jp-CodeCell', { hasText: 'const next = topK(' }).locator('.cm-content').click();
      await page.keyboard.press('Shift+Enter');
      const changed = page.locator('.jp-OutputArea-output', { hasText: 'next token after "The capital city of Germany is"' });
      await changed.first().waitFor({ timeout: 60_000 });
      seen.changedPrompt = await changed.count();
      expect(await page.evaluate(RUN_STATUS_JS)).not.toMatch(/^error/);

      // A second notebook on the quickstart's kernel.
      const sessions = (await api(url, 'sessions')) as Array<{ path: string; kernel: { id: string } }>;
      const kernelId = sessions.find((x) => x.path.endsWith(NOTEBOOK))!.kernel.id;
      await api(url, 'sessions', { method: 'POST', body: JSON.stringify({ path: SECOND, type: 'notebook', name: 'second', kernel: { id: kernelId } }) });
      // In a workspace of its own, so the quickstart's tab (restored from the default workspace) stays closed.
      const second = url.replace(`/lab/tree/notebooks/${NOTEBOOK}?`, `/lab/workspaces/second/tree/${SECOND}?`);
      const kernelOf = async () => ((await api(url, `kernels/${kernelId}`)) as { execution_state: string }).execution_state;
      await page.close(); // a new tab of its own, like a user opening a second notebook
      page = await newPage();
      await openNotebook(page, second, kernelOf);
      expect(await runAll(page)).toBe('done');
      seen.secondNotebook = await waitForChart(page);

      // After a kernel restart (a fresh process: nothing of the old kernel's state), the same.
      await api(url, `kernels/${kernelId}/restart`, { method: 'POST' });
      await openNotebook(page, second, kernelOf);
      expect(await runAll(page)).toBe('done');
      seen.afterRestart = await waitForChart(page);
      await page.screenshot({ path: path.join(OUT, 'browser-after-restart.png') });
    } catch (e) {
      await page.screenshot({ path: path.join(OUT, 'browser-failure.png') }).catch(() => {});
      throw e;
    }
    console.log(`browser test: ${JSON.stringify(seen)} in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots out/test/browser-*.png`);

    expect(savedUnchanged).toBe(before);
    expect(status).toBe('done');
    expect(seen.runAll).toBeGreaterThanOrEqual(1);
    expect(seen.changedPrompt).toBeGreaterThanOrEqual(1);
    expect(seen.tables).toBeGreaterThanOrEqual(1);
    expect(seen.afterReload).toBe(1);
    expect(seen.secondNotebook).toBe(1);
    expect(seen.afterRestart).toBe(1);
    expect(consoleErrors).toEqual([]);
    await stopLab();
    expect(fs.readFileSync(path.join(ROOT, 'notebooks', NOTEBOOK), 'utf8')).toBe(before);
  }, 15 * 60_000);
});
