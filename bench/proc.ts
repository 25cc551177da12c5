/** Running a child process and reading the one JSON line it prints last. */
import { spawn } from 'child_process';
import path from 'path';
import { ROOT } from './configs';

export const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

export interface Proc {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Proc> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(e) });
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** The last line of stdout as JSON, or an error carrying the tail of stderr. */
export function lastJson<T>(p: Proc, what: string): T {
  const line = p.stdout.trim().split('\n').pop() ?? '';
  if (p.code !== 0 || !line.startsWith('{')) {
    const tail = p.stderr.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${what} failed (exit ${p.code}): ${tail}`);
  }
  return JSON.parse(line) as T;
}

export const min = (xs: number[]) => Math.min(...xs);
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
