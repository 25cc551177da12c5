// Stopping library work: an AbortSignal passed in the options ({ signal }), or Kernel → Interrupt in
// a notebook. tslab answers SIGINT by failing the running cell's promise at once while the cell's
// code keeps running (its loops, its progress bars, at 100 % CPU). Our kernel launcher
// (kernel-config/tslab-kernel.js) runs each cell in its own async context and marks the cells
// running at a SIGINT as interrupted; `throwIfAborted` is called before every forward pass and
// between the batches of each method, so work started by an interrupted cell ends at its next batch
// with one line, "interrupted", and a cell started afterwards runs normally. Outside that kernel
// (a script, vitest, another Jupyter front end) only the signal applies.
import { FactlensError } from '../errors';

export class InterruptedError extends FactlensError {}

/** Options field that library calls take for cancellation from code. */
export interface AbortOptions {
  /** Abort the call: it stops before its next batch with an InterruptedError. */
  signal?: AbortSignal;
}

/** What tslab-kernel.js publishes on globalThis: whether the current cell was interrupted. */
interface CellInterrupts {
  interrupted(): boolean;
}

function cellInterrupts(): CellInterrupts | undefined {
  const c = (globalThis as { __factlensCells?: CellInterrupts }).__factlensCells;
  return c && typeof c.interrupted === 'function' ? c : undefined;
}

/** True when the signal is aborted or the notebook cell this code runs for was interrupted. */
export function isAborted(signal?: AbortSignal): boolean {
  return Boolean(signal?.aborted) || Boolean(cellInterrupts()?.interrupted());
}

/** Throws a one-line InterruptedError when the signal is aborted or the running cell was interrupted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const r = signal.reason as unknown;
    // abort() without a reason gives a generic AbortError, which adds nothing to the message.
    const why = r instanceof Error && r.name !== 'AbortError' ? `: ${r.message}` : typeof r === 'string' ? `: ${r}` : '';
    throw new InterruptedError(`interrupted (signal aborted${why})`);
  }
  if (cellInterrupts()?.interrupted()) throw new InterruptedError('interrupted (Kernel → Interrupt)');
}
