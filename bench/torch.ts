/**
 * Optional side-by-side PyTorch: a venv under .cache/bench-venv with torch,
 * transformers and safetensors, installed offline from this machine's local
 * wheel stores (whatever `pip config list` names, plus /opt/pypi). When that
 * fails the bench goes on without the comparison and says why.
 */
import fs from 'fs';
import path from 'path';
import { CACHE, ROOT } from './configs';
import { lastJson, run } from './proc';

const VENV = path.join(CACHE, 'bench-venv');
const PY = path.join(VENV, 'bin', 'python');

export interface TorchEnv {
  python: string | null;
  note: string;
}

/** Local package stores pip's configuration names (extra-index-url, find-links), plus the primary one. */
async function localStores(): Promise<string[]> {
  const cfg = await run('pip3', ['config', 'list']);
  const args = ['--index-url', 'file:///opt/pypi/simple'];
  for (const line of cfg.stdout.split('\n')) {
    const m = /^[\w:.]*\.(extra-index-url|find-links)='(.*)'$/.exec(line.trim());
    if (!m) continue;
    for (const loc of m[2].split(/\s+/).filter(Boolean)) {
      if (loc.startsWith('file://') || loc.startsWith('/')) args.push(m[1] === 'find-links' ? '--find-links' : '--extra-index-url', loc);
    }
  }
  return args;
}

async function works(): Promise<string | null> {
  if (!fs.existsSync(PY)) return null;
  const p = await run(PY, ['-c', 'import torch, transformers, safetensors; print(torch.__version__, transformers.__version__)']);
  return p.code === 0 ? p.stdout.trim() : null;
}

export async function torchEnv(log: (s: string) => void): Promise<TorchEnv> {
  let versions = await works();
  if (!versions) {
    log('setting up .cache/bench-venv (torch + transformers from the local wheel store, once) ...');
    const venv = await run('python3', ['-m', 'venv', VENV]);
    if (venv.code !== 0) return { python: null, note: `no PyTorch comparison: python3 -m venv failed (${venv.stderr.trim().split('\n').pop()})` };
    const stores = await localStores();
    const pip = await run(PY, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', ...stores, 'torch', 'transformers', 'safetensors'], { timeoutMs: 15 * 60_000 });
    versions = await works();
    if (!versions) return { python: null, note: `no PyTorch comparison: pip install failed (${pip.stderr.trim().split('\n').pop()})` };
  }
  const [torchV, tfV] = versions.split(' ');
  return { python: PY, note: `PyTorch ${torchV} + transformers ${tfV}, CPU, torch.set_num_threads(2)` };
}

export interface TorchRun {
  batch: number;
  ms: number[];
  probe: number[];
}

/** Run one of the bench's Python scripts on a checkpoint with the token batches on stdin; its results. */
async function torchScript<R>(python: string, script: string, args: string[], batches: Record<number, number[][]>, dir: string): Promise<R[]> {
  const p = await run(python, [path.join(ROOT, 'bench', script), dir, ...args], {
    input: JSON.stringify(batches),
    env: { ...process.env, OMP_NUM_THREADS: '2', TOKENIZERS_PARALLELISM: 'false', HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' },
    timeoutMs: 10 * 60_000,
  });
  return lastJson<{ results: R[] }>(p, `PyTorch (${script}) on ${path.basename(dir)}`).results;
}

/** Time transformers on one checkpoint for the given token batches. */
export function torchForward(python: string, dir: string, batches: Record<number, number[][]>, budgetMs: number): Promise<TorchRun[]> {
  return torchScript<TorchRun>(python, 'torch_forward.py', [String(budgetMs)], batches, dir);
}

export interface TorchGenerateRun {
  batch: number;
  ms: number[];
  tokens: number[]; // row 0's new tokens
}

/** Time transformers' greedy `generate` (with its cache) of `newTokens` tokens per row. */
export function torchGenerate(python: string, dir: string, batches: Record<number, number[][]>, newTokens: number, budgetMs: number): Promise<TorchGenerateRun[]> {
  return torchScript<TorchGenerateRun>(python, 'torch_generate.py', [String(newTokens), String(budgetMs)], batches, dir);
}
