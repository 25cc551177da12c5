#!/usr/bin/env node
// git "clean" filter for notebooks/*.ipynb (set up by scripts/setup.sh, declared in .gitattributes):
// what git stores is the notebook without outputs, execution counts or per-cell UI state, with the
// notebook metadata of kernel-config/notebook-metadata.json, serialised exactly as
// scripts/build-notebooks.ts writes it. So Run All + Save in JupyterLab leaves `git status` clean and
// an edited cell shows as a source diff only. The executed notebooks live in out/notebooks/.
// Reads the notebook on stdin, writes the cleaned one on stdout; input that is not a notebook passes through.
'use strict';
const fs = require('fs');
const path = require('path');

const METADATA = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'kernel-config', 'notebook-metadata.json'), 'utf8'));

/** A cell source as nbformat writes it: lines, each but the last ending in a newline. */
function sourceLines(src) {
  if (Array.isArray(src)) return src;
  return String(src).split(/(?<=\n)/).filter((l) => l !== '');
}

/** The committed form of a parsed notebook (build-notebooks.ts writes its notebooks through this too). */
function cleanNotebook(nb) {
  return {
    cells: nb.cells.map((c) => (c.cell_type === 'code'
      ? { cell_type: 'code', execution_count: null, id: c.id, metadata: {}, outputs: [], source: sourceLines(c.source) }
      : { cell_type: c.cell_type, id: c.id, metadata: {}, source: sourceLines(c.source) })),
    metadata: METADATA,
    nbformat: 4,
    nbformat_minor: 5,
  };
}

function serialize(nb) {
  return JSON.stringify(nb, null, 1) + '\n';
}

module.exports = { cleanNotebook, serialize, METADATA };

if (require.main === module) {
  const input = fs.readFileSync(0, 'utf8');
  let nb;
  try {
    nb = JSON.parse(input);
  } catch {
    nb = null;
  }
  process.stdout.write(nb && Array.isArray(nb.cells) ? serialize(cleanNotebook(nb)) : input);
}
