// How display output reaches Jupyter from a tslab kernel. tslab's public API sends one mime type per
// output; a figure wants text/html (what every front end renders) and its plotly JSON (what tests
// read) in ONE output, which needs tslab's internal writer, `lastWriteDisplayData` of the kernel's
// tslab/dist/jupyter.js. Used defensively: if that internal moves, we fall back to the public API.
// Outside a kernel (node, vitest) nothing is displayed and callers print text or do nothing.

export type MimeBundle = Record<string, unknown>;
type Writer = (msg: { data: MimeBundle; metadata: object; transient: object }, update: boolean) => void;
interface PublicDisplay { html(s: string): void; markdown(s: string): void; text(s: string): void }

/** True inside a tslab kernel (its executor sets globalThis.__tslab__ before running any cell). */
export function inTslab(): boolean {
  return typeof (globalThis as { __tslab__?: unknown }).__tslab__ === 'object';
}

function internalWriter(): Writer | undefined {
  // Cells and tslab-compiled modules share Node's module cache with the kernel itself.
  const cache = typeof require !== 'undefined' ? require.cache : {};
  for (const key of Object.keys(cache)) {
    if (!/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(key)) continue;
    const w = cache[key]?.exports?.lastWriteDisplayData;
    if (typeof w === 'function') return w as Writer;
  }
  return undefined;
}

/** Sends with the public API: the richest single mime type of the bundle. */
function publicSend(target: PublicDisplay, bundle: MimeBundle): void {
  if (typeof bundle['text/html'] === 'string') target.html(bundle['text/html']);
  else if (typeof bundle['text/markdown'] === 'string') target.markdown(bundle['text/markdown']);
  else target.text(String(bundle['text/plain'] ?? ''));
}

/** A display output that can be replaced in place (progress bars). */
export interface DisplayHandle { show(bundle: MimeBundle): void }

let counter = 0;

/**
 * Opens an output slot: the first show() creates it, later ones replace its content. Null outside tslab.
 * The writer is taken when the slot opens: tslab swaps it for each new cell, and a bar of a cell that was
 * interrupted must keep updating its own cell, never appear in the one that runs next.
 */
export function openDisplay(): DisplayHandle | null {
  if (!inTslab()) return null;
  const id = `factlens-${process.pid}-${Date.now()}-${counter++}`;
  const w = internalWriter();
  let shown = false;
  let fallback: PublicDisplay | undefined;
  return {
    show(bundle: MimeBundle): void {
      if (w) {
        try {
          w({ data: bundle, metadata: {}, transient: { display_id: id } }, shown);
          shown = true;
          return;
        } catch { /* fall through to the public API */ }
      }
      fallback ??= (require('tslab') as { newDisplay(): PublicDisplay }).newDisplay();
      publicSend(fallback, bundle);
    },
  };
}

/** Displays a mime bundle as a new output. Returns false outside tslab. */
export function display(bundle: MimeBundle): boolean {
  const w = internalWriter();
  if (w && inTslab()) {
    try {
      w({ data: bundle, metadata: {}, transient: {} }, false);
      return true;
    } catch { /* fall through */ }
  }
  if (!inTslab()) return false;
  publicSend((require('tslab') as { display: PublicDisplay }).display, bundle);
  return true;
}
