# Sourced by the other scripts: points Jupyter at the project-local .jupyter/ (kernel spec, config,
# runtime files) so nothing is read from or written to ~/.jupyter, and picks the Python that has Jupyter.
FACTLENS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FACTLENS_ROOT
export JUPYTER_CONFIG_DIR="$FACTLENS_ROOT/.jupyter/config"
export JUPYTER_DATA_DIR="$FACTLENS_ROOT/.jupyter/data"
export JUPYTER_PATH="$FACTLENS_ROOT/.jupyter/data"
export JUPYTER_RUNTIME_DIR="$FACTLENS_ROOT/.jupyter/runtime"
export JUPYTERLAB_SETTINGS_DIR="$FACTLENS_ROOT/.jupyter/lab/user-settings"
export JUPYTERLAB_WORKSPACES_DIR="$FACTLENS_ROOT/.jupyter/lab/workspaces"
export JUPYTER_PLATFORM_DIRS=1   # silences jupyter_core's platformdirs migration warning
export PATH="$FACTLENS_ROOT/node_modules/.bin:$PATH"

# The Python with Jupyter: the project venv (pip), else Debian's (apt fallback), else none.
# FACTLENS_JUPYTER=debian picks Debian's even when .venv exists.
FACTLENS_JUPYTER_PY=""
if [ "${FACTLENS_JUPYTER:-}" != debian ] && [ -x "$FACTLENS_ROOT/.venv/bin/jupyter-nbconvert" ]; then
  FACTLENS_JUPYTER_PY="$FACTLENS_ROOT/.venv/bin/python"
elif [ -x /usr/bin/jupyter-nbconvert ]; then
  FACTLENS_JUPYTER_PY=/usr/bin/python3
fi
export FACTLENS_JUPYTER_PY
