// A progress bar for long sweeps that updates one notebook output in place (a Jupyter display id),
// throttled so a 10,000-step loop sends a few dozen updates. Outside a notebook it draws on a
// terminal's stderr, and stays quiet when stderr is not a terminal (tests, CI logs).
import { escapeHtml } from './table';
import { openDisplay } from './tslab';

export interface Progress {
  /** Advances by n steps (default 1). */
  tick(n?: number): void;
  /** Marks the sweep finished (shows the total time). */
  done(): void;
}

const EVERY_MS = 250;

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function progress(total: number, label = ''): Progress {
  const t0 = Date.now();
  const handle = openDisplay();
  const tty = !handle && process.stderr.isTTY;
  let count = 0;
  let last = 0;
  let finished = false;

  function render(): void {
    const elapsed = Date.now() - t0;
    const eta = count > 0 && count < total ? ` · ETA ${seconds((elapsed / count) * (total - count))}` : '';
    const text = `${label ? label + ' ' : ''}${count}/${total} · ${seconds(elapsed)}${finished ? ' · done' : eta}`;
    if (handle) {
      handle.show({
        'text/html': `<div style="font-family:monospace"><progress value="${count}" max="${total}" style="width:240px"></progress> ${escapeHtml(text)}</div>`,
        'text/plain': text,
      });
    } else if (tty) {
      process.stderr.write(`\r${text}${finished ? '\n' : ''}`);
    }
  }

  render();
  return {
    tick(n = 1): void {
      count = Math.min(total, count + n);
      const now = Date.now();
      if (now - last >= EVERY_MS) {
        last = now;
        render();
      }
    },
    done(): void {
      if (finished) return;
      finished = true;
      count = Math.max(count, total);
      render();
    },
  };
}

/** Iterates `items` with a progress bar: `for (const p of track(prompts, 'tracing')) { ... }`. */
export function* track<T>(items: readonly T[], label = ''): Generator<T> {
  const bar = progress(items.length, label);
  try {
    for (const item of items) {
      yield item;
      bar.tick();
    }
  } finally {
    bar.done();
  }
}

/**
 * A progress bar fed by the library's `onProgress(done, total)` callbacks: opened at the first call (when the
 * total is known), advanced by the difference, closed when `done` reaches `total`.
 */
export function progressCallback(label = ''): (done: number, total: number) => void {
  let bar: Progress | null = null;
  let seen = 0;
  return (done, total) => {
    if (!bar) bar = progress(total, label);
    bar.tick(done - seen);
    seen = done;
    if (done >= total) bar.done();
  };
}
