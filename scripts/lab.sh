#!/usr/bin/env bash
# `npm run lab [-- jupyter options]`: JupyterLab on notebooks/ with the project-local tslab kernel
# (the Debian classic notebook where setup had to fall back to it). A notebook imports the library as
# `import { ... } from '../src'` because the kernel runs in the notebook's folder.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FACTLENS_ROOT"
[ -f "$JUPYTER_DATA_DIR/kernels/tslab/kernel.json" ] || { echo "run 'bash scripts/setup.sh' first" >&2; exit 2; }
root_flag=(); [ "$(id -u)" = 0 ] && root_flag=(--allow-root)
if [ "${FACTLENS_JUPYTER:-}" != debian ] && [ -x .venv/bin/jupyter-lab ]; then
  exec .venv/bin/jupyter-lab --notebook-dir=notebooks "${root_flag[@]}" "$@"
elif [ -x /usr/bin/jupyter-notebook ]; then
  echo "JupyterLab is not installed (setup fell back to Debian): starting the classic notebook" >&2
  exec /usr/bin/jupyter-notebook --notebook-dir=notebooks "${root_flag[@]}" "$@"
fi
echo "no Jupyter found: run 'bash scripts/setup.sh'" >&2
exit 2
