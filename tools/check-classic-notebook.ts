/**
 * npx tsx tools/check-classic-notebook.ts
 *
 * One-off check of the Debian classic-notebook fallback (`FACTLENS_JUPYTER=debian npm run lab`, needs
 * `apt-get install jupyter-notebook` and Chromium): runs notebooks/00-quickstart.ipynb there in Chromium,
 * counts the figures drawn by the HTML fallback (plotly.js from the server's /static/), reloads the page,
 * re-runs one figure cell and counts again. Prints a JSON line; exits 1 if no figure was drawn either time.
 * Not part of `npm test`: CI installs JupyterLab, not the classic notebook.
 */
import { spawn } from 'child_process';
import path from 'path';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..');
const PORT = 8899;
const TOKEN = 'factlens-classic-check';
const URL = `http://127.0.0.1:${PORT}/notebooks/00-quickstart.ipynb?token=${TOKEN}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Figures drawn by the fallback: its divs that hold plotly's svg. */
const DRAWN = `Array.from(document.querySelectorAll('.factlens-plot')).filter((d) => d.querySelector('.main-svg')).length`;
/** 'done' when no cell is queued or running and the kernel is idle. */
const IDLE = `(() => { const n = Jupyter.notebook; return n.kernel && n.kernel.is_connected() && document.querySelectorAll('.input_prompt').length > 0 &&
  !Array.from(document.querySelectorAll('.input_prompt')).some((p) => /\\*/.test(p.textContent)) && document.querySelector('#kernel_indicator_icon.kernel_idle_icon') ? 'done' : 'busy'; })()`;

async function main(): Promise<void> {
  const server = spawn('bash', ['scripts/lab.sh', `--port=${PORT}`, '--no-browser', `--NotebookApp.token=${TOKEN}`], { cwd: ROOT, env: { ...process.env, FACTLENS_JUPYTER: 'debian' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  server.stdout!.on('data', (d) => (log += d));
  server.stderr!.on('data', (d) => (log += d));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const result: Record<string, unknown> = {};
  try {
    for (let i = 0; i < 60 && !/is running at|Jupyter Notebook .* is running/.test(log); i++) await sleep(1000);
    result.server = (log.match(/Jupyter Notebook [\d.]+/) ?? ['?'])[0];
    const page = await browser.newPage({ viewport: { width: 1280, height: 2400 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const untilIdle = async (ms: number) => {
      const t0 = Date.now();
      while (Date.now() - t0 < ms && (await page.evaluate(IDLE).catch(() => 'busy')) !== 'done') await sleep(1000);
    };
    await page.goto(URL);
    await page.waitForFunction('window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()', null, { timeout: 120_000 });
    const t0 = Date.now();
    await page.evaluate('Jupyter.notebook.execute_all_cells()');
    await sleep(3000);
    await untilIdle(300_000);
    await sleep(3000); // the fallback draws when plotly.js has loaded
    result.runAllSeconds = Math.round((Date.now() - t0) / 1000);
    result.drawnAfterRunAll = await page.evaluate(DRAWN);
    result.stderrOutputs = await page.locator('.output_stderr').count();
    await page.screenshot({ path: path.join(ROOT, 'out', 'classic-notebook.png'), fullPage: false }).catch(() => {});
    // Reopen the page (outputs were not saved: the notebook file is untouched) and re-run one figure cell.
    await page.goto(URL);
    await page.waitForFunction('window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()', null, { timeout: 120_000 });
    const index = await page.evaluate(`Jupyter.notebook.get_cells().findIndex((c) => c.cell_type === 'code' && /title: 'Logit lens, Mamba'/.test(c.get_text()))`);
    await page.evaluate(`Jupyter.notebook.execute_cells([${index}])`);
    await sleep(2000);
    await untilIdle(120_000);
    await sleep(3000);
    result.drawnAfterReopen = await page.evaluate(DRAWN);
    result.pageErrors = errors;
  } finally {
    await browser.close();
    server.kill('SIGTERM');
  }
  console.log(JSON.stringify(result));
  if (!(Number(result.drawnAfterRunAll) > 0 && Number(result.drawnAfterReopen) > 0)) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
