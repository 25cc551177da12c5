#!/usr/bin/env node
// Runs notebook cells in-process with tslab's own compiler and executor, as the Jupyter kernel does
// (kernel-config/tslab-kernel.js's patches: `../src` imports, TypeScript 5.0), without Jupyter.
// Usage: node test/support/run-cells.cjs CELLS.json   (run with the notebook's folder as the working directory)
// CELLS.json is an array of cell sources. Each cell's last-expression value is printed as one line
// `OUT <cell> <text>` (display data as `DISPLAY <cell> <mime> <content>`); a failing cell prints `FAILED cell <i>` and its errors, and the exit code is 1.
'use strict';
const fs = require('fs');
const path = require('path');
const util = require('util');

const ROOT = path.resolve(__dirname, '..', '..');
require(path.join(ROOT, 'kernel-config', 'tslab-kernel.js')); // patches tslab's converter/executor in the module cache
const tslab = path.dirname(require.resolve('tslab/package.json', { paths: [ROOT] }));
const { createConverter } = require(path.join(tslab, 'dist', 'converter'));
const { createExecutor } = require(path.join(tslab, 'dist', 'executor'));

// Display data (tables, figures, markdown, progress bars) would go to the Jupyter front end: print its mime types.
// Printed one line per mime type: `DISPLAY <cell> <mime> <content>` (text cut at 20,000 characters, newlines as \n).
require(path.join(tslab, 'dist', 'jupyter')).lastWriteDisplayData = (d) => {
  for (const [mime, content] of Object.entries(d.data)) {
    const text = typeof content === 'string' ? content : JSON.stringify(content);
    process.stdout.write(`DISPLAY ${current} ${mime} ${text.slice(0, 20000).replace(/\n/g, '\\n')}\n`);
  }
};

const cells = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const conv = createConverter();
let current = 0;
const errors = [];
const sink = {
  log: (...a) => process.stdout.write(`OUT ${current} ${util.format(...a).replace(/\n/g, '\\n')}\n`),
  error: (...a) => errors.push(util.format(...a)),
};
const ex = createExecutor(process.cwd(), { node: conv, browser: conv, close: () => conv.close() }, sink);

(async () => {
  for (current = 0; current < cells.length; current++) {
    const ok = await ex.execute(cells[current]);
    if (!ok) {
      process.stdout.write(`FAILED cell ${current}\n${errors.join('\n')}\n`);
      conv.close();
      process.exit(1);
    }
  }
  conv.close();
  process.exit(0);
})();
