import { inspect } from 'util';

/**
 * The base class of the library's user-facing errors (bad model path, unknown hook, ...). Its message
 * is meant to be read by a notebook user, so it displays as one line, `FactlensError: message`,
 * wherever Node formats it with util.inspect: tslab prints a failed cell's error that way, and so
 * does console.error. (A script's uncaught error still shows the stack: Node prints `.stack` there.)
 * Set FACTLENS_DEBUG=1 to see the stack in notebooks too. Subclasses get their own name (`class HookError extends FactlensError {}`).
 */
export class FactlensError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  [inspect.custom](): string {
    if (process.env.FACTLENS_DEBUG) return this.stack ?? `${this.name}: ${this.message}`;
    return `${this.name}: ${this.message}`;
  }
}
