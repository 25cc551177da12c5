#!/usr/bin/env bash
# `npm run notebooks [-- name ...]`: rebuild notebooks/*.ipynb from notebooks/src/*.nb.ts, then execute
# them headlessly through Jupyter with the tslab kernel; executed copies and HTML go to out/notebooks/
# (or $FACTLENS_NOTEBOOK_OUT). Arguments: notebook names (`01-causal-tracing`) or paths to .ipynb files.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FACTLENS_ROOT"
if [ -z "$FACTLENS_JUPYTER_PY" ] || [ ! -f "$JUPYTER_DATA_DIR/kernels/tslab/kernel.json" ]; then
  echo "Jupyter or the tslab kernel spec is not installed: run 'bash scripts/setup.sh' first" >&2
  exit 2
fi
[ "${FACTLENS_SKIP_BUILD:-}" = 1 ] || node_modules/.bin/tsx scripts/build-notebooks.ts   # tests check sync instead
exec "$FACTLENS_JUPYTER_PY" scripts/run_notebooks.py notebooks "${FACTLENS_NOTEBOOK_OUT:-out/notebooks}" "$@"
