/**
 * A long run killed and resumed loses nothing (issue #16, defect 7): the CLI's checkpointed causal
 * trace is SIGKILLed several times at seeded random points while it appends facts, rerun each time
 * with the same command, and its final AIE table equals an uninterrupted run's, row for row.
 * The child is plain `node --import tsx` (one process, so the kill really stops the writer).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { rng } from '../../src/runtime/generate';

const ROOT = path.join(__dirname, '..', '..');
const FACTS = 6;
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-kill-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const lineCount = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').length - 1 : 0);

/**
 * Run the trace command on `log`; with `killAtLine`, SIGKILL it `delayMs` after the log first has
 * that many complete lines. Resolves with its stdout and whether it was killed.
 */
function trace(log: string, kill?: { atLine: number; delayMs: number }): Promise<{ stdout: string; killed: boolean; code: number | null; stderr: string }> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'trace', '--model', 'data/models/mamba-facts', '--facts', String(FACTS), '--chunk', '1', '--kinds', 'resid,ssm_out', '--checkpoint', log];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let killed = false;
  const poll = kill && setInterval(() => {
    if (lineCount(log) < kill.atLine) return;
    clearInterval(poll!);
    setTimeout(() => {
      killed = child.kill('SIGKILL');
    }, kill.delayMs);
  }, 5);
  return new Promise((resolve) => child.on('exit', (code) => {
    if (poll) clearInterval(poll);
    resolve({ stdout, killed: killed && code === null, code, stderr });
  }));
}

it('a trace killed at 3 random points and resumed prints the uninterrupted run\'s AIE table', async () => {
  const reference = await trace(path.join(tmp, 'reference.jsonl'));
  expect(reference.code, reference.stderr).toBe(0);
  const table = JSON.parse(reference.stdout) as Array<Record<string, unknown>>;
  expect(table.length).toBeGreaterThan(0);

  const log = path.join(tmp, 'killed.jsonl');
  const random = rng(16);
  let kills = 0;
  for (let attempt = 0; attempt < 3; attempt++) {
    const done = Math.max(1, lineCount(log)); // the header, then one line per fact
    const atLine = done + Math.floor(random() * (FACTS + 1 - done)); // kill while facts remain
    const res = await trace(log, { atLine, delayMs: Math.floor(random() * 400) });
    if (res.killed) kills++;
    else expect(res.code, res.stderr).toBe(0); // it finished before the kill landed
  }
  expect(kills).toBeGreaterThanOrEqual(2); // the test really interrupted the run
  const resumed = await trace(log);
  expect(resumed.code, resumed.stderr).toBe(0);
  const got = JSON.parse(resumed.stdout) as Array<Record<string, unknown>>;
  expect(got.length).toBe(table.length);
  got.forEach((row, i) => expect(row).toEqual(table[i]));
  expect(lineCount(log)).toBe(1 + FACTS); // every fact once, nothing lost or duplicated
}, 300_000);
