#!/usr/bin/env node
// Starts the tslab kernel so that a notebook in notebooks/ can `import { ... } from '../src'`.
//
// tslab compiles cells and the .ts files they import with `rootDir` = the kernel's cwd (the notebook's
// folder), so TypeScript rejects any import from outside it: "File '.../src/viz/index.ts' is not under
// 'rootDir' '.../notebooks'". This launcher loads tslab's converter with rootDir = the project root
// (when the kernel runs inside the project) and the places that derive output paths from the cwd
// adjusted to match, and teaches its loader of compiled .ts that `../src` means `../src/index`.
// Nothing under node_modules is modified. tslab is pinned (1.0.22): if its code
// changes, the patch fails loudly instead of misbehaving.
'use strict';
const fs = require('fs');
const path = require('path');
const Module = require('module');

const PROJECT_ROOT = path.resolve(__dirname, '..');
const tslabDir = path.dirname(require.resolve('tslab/package.json', { paths: [PROJECT_ROOT] }));

const cwd = process.cwd();
const inProject = cwd === PROJECT_ROOT || cwd.startsWith(PROJECT_ROOT + path.sep);
const rootDir = (inProject ? PROJECT_ROOT : cwd).replace(/\\/g, '/');

const { AsyncLocalStorage } = require('async_hooks');
const { inspect } = require('util');

const GRACE_MS = 10000;
const cellContext = new AsyncLocalStorage();
let interrupts = 0;
globalThis.__factlensCells = {
  /** Runs a cell's code in its own context. */
  run: (fn) => cellContext.run({ interruptsAtStart: interrupts }, fn),
  /** Whether the cell the current code belongs to was running when a SIGINT came. */
  interrupted: () => { const c = cellContext.getStore(); return c !== undefined && c.interruptsAtStart < interrupts; },
  /** tslab's interrupt promise, its rejection delayed so the library can stop first with its own error. */
  grace: (p) => p.catch((e) => new Promise((_, reject) => setTimeout(() => reject(e), GRACE_MS))),
  /** tslab's error for a cell that did not stop: one line, like the library's errors. */
  timeoutError: () => {
    const e = new Error(`interrupted: the cell's code did not stop within ${GRACE_MS / 1000} s and may still be running`);
    e[inspect.custom] = () => `Error: ${e.message}`;
    return e;
  },
};

// file -> [what tslab 1.0.22 says, what we make it say]; each must occur exactly once.
const PATCHES = {
  'converter.js': [
    ['const dstFilename = (0, tspath_1.normalizeJoin)(outDir, "__tslab__.js");',
      'const dstFilename = (0, tspath_1.normalizeJoin)(outDir, path_1.default.relative(__rootDir, cwd), "__tslab__.js");'],
    ['const dstDeclFilename = (0, tspath_1.normalizeJoin)(outDir, "__tslab__.d.ts");',
      'const dstDeclFilename = (0, tspath_1.normalizeJoin)(outDir, path_1.default.relative(__rootDir, cwd), "__tslab__.d.ts");'],
    ['rootDir: cwd,', 'rootDir: __rootDir,'],
    ['path: (0, tspath_1.normalizeJoin)(cwd, rel),', 'path: (0, tspath_1.normalizeJoin)(__rootDir, rel),'],
  ],
  // tslab maps `import '../src/viz'` to src/viz.js only; add Node's folder/index.js rule.
  'executor.js': [
    ['            filename += ".js";',
      '            filename = sideOutputs.has(filename + ".js") || !sideOutputs.has(filename + "/index.js") ? filename + ".js" : filename + "/index.js";'],
    ['const ret = vm_1.default.runInThisContext(wrapped, {\n                breakOnSigint: true,\n            });',
      'const ret = globalThis.__factlensCells.run(() => vm_1.default.runInThisContext(wrapped, {\n                breakOnSigint: true,\n            }));'],
    ['await Promise.race([promise, interruptPromise]);', 'await Promise.race([promise, globalThis.__factlensCells.grace(interruptPromise)]);'],
    ['let interrupted = new Error("Interrupted asynchronously");', 'let interrupted = globalThis.__factlensCells.timeoutError();'],
  ],
};

function loadPatched(name, patches) {
  const file = path.join(tslabDir, 'dist', name);
  let src = fs.readFileSync(file, 'utf8');
  for (const [from, to] of patches) {
    const n = src.split(from).length - 1;
    if (n !== 1) {
      console.error(`tslab-kernel: cannot patch ${file} (found ${n} of: ${from}); is tslab still 1.0.22?`);
      process.exit(1);
    }
    src = src.replace(from, to);
  }
  // After the "use strict" directive, which must stay first.
  src = src.replace(/^("use strict";\n)?/, (m) => `${m}const __rootDir = ${JSON.stringify(rootDir)};\n`);
  // Into the module cache under the real file name, so tslab's own require('./converter') gets it.
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  mod._compile(src, file);
  mod.loaded = true;
  Module._cache[file] = mod;
}

for (const [name, patches] of Object.entries(PATCHES)) loadPatched(name, patches);

// Required (not run) by test/support/run-cells.cjs, which only wants the patched converter and executor.
if (require.main === module) {
  // Before tslab's own listener (main() adds it), so the mark is set when tslab reacts.
  process.on('SIGINT', () => { interrupts++; });
  require(path.join(tslabDir, 'dist', 'main.js')).main();
}
