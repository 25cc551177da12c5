#!/usr/bin/env bash
# One command from a fresh clone to executed notebooks: npm deps, a project-local Jupyter (.venv from
# the machine's local wheel store, or Debian's classic notebook), the tslab kernel spec in .jupyter/,
# Chromium for the browser test, then `npm run notebooks`. Every step is skipped when already done.
#
#   FACTLENS_SKIP_NOTEBOOKS=1  set up only, don't execute the notebooks (CI runs them inside npm test)
#   FACTLENS_SKIP_CHROMIUM=1   don't apt-get install chromium
#   FACTLENS_JUPYTER=debian    use Debian's classic notebook + nbconvert (apt) instead of a pip .venv
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FACTLENS_ROOT"
t0=$SECONDS
step() { printf '\n== %s\n' "$*"; }

# Hash of a file, to skip a step whose input didn't change.
hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

step "npm dependencies"
# onnxruntime-node's postinstall downloads CUDA providers from the internet; skip it (CPU ships in the tarball).
export ONNXRUNTIME_NODE_INSTALL=skip
lock_hash=$(hash_of package-lock.json 2>/dev/null || echo none)
if [ -f node_modules/.factlens-lock ] && [ "$(cat node_modules/.factlens-lock)" = "$lock_hash" ]; then
  echo "up to date"
elif [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
  echo "$lock_hash" > node_modules/.factlens-lock
else
  npm install --no-audit --no-fund   # no lockfile (a fork that dropped it): resolve afresh
fi

step "Jupyter (Python side)"
req_hash=$(hash_of kernel-config/requirements.txt)
lab_version() { .venv/bin/python -c 'import importlib.metadata as m; print(m.version("jupyterlab"))' 2>/dev/null || echo '?'; }
venv_ok() { [ -f .venv/.factlens-req ] && [ "$(cat .venv/.factlens-req)" = "$req_hash" ] && [ -x .venv/bin/jupyter-nbconvert ]; }

# pip options that name only the local wheel stores from `pip config`, so pip never asks the public index.
local_pip_args() {
  local stores=() links=() v
  for v in $(python3 -m pip config get global.index-url 2>/dev/null) $(python3 -m pip config get global.extra-index-url 2>/dev/null); do
    case "$v" in file://*) [ -d "${v#file://}" ] && stores+=("$v") ;; esac
  done
  for v in $(python3 -m pip config get global.find-links 2>/dev/null); do
    [ -d "$v" ] && links+=("$v")
  done
  [ -d /opt/pypi/simple ] && [ ${#stores[@]} -eq 0 ] && stores+=("file:///opt/pypi/simple")
  [ ${#stores[@]} -gt 0 ] || return 1
  printf '%s\n' --no-input --disable-pip-version-check --index-url "${stores[0]}"
  for v in "${stores[@]:1}"; do printf '%s\n' --extra-index-url "$v"; done
  for v in "${links[@]}"; do printf '%s\n' --find-links "$v"; done
}

install_venv() {
  local args
  args=$(local_pip_args) || { echo "no local pip wheel store found"; return 1; }
  rm -rf .venv
  python3 -m venv .venv || return 1
  # shellcheck disable=SC2086  # one option or value per line, none has spaces
  .venv/bin/pip install -q $args -r kernel-config/requirements.txt 2>&1 | grep -v 'is ignored: it is neither' || true
  [ -x .venv/bin/jupyter-nbconvert ] && [ -x .venv/bin/jupyter-lab ] || return 1
  echo "$req_hash" > .venv/.factlens-req
}

install_debian_jupyter() {
  [ "$(id -u)" = 0 ] || { echo "not root: cannot apt-get install the Debian fallback"; return 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    jupyter-notebook python3-notebook jupyter-nbconvert python3-nbconvert python3-nbclient python3-ipykernel jupyter-client
}

if [ "${FACTLENS_JUPYTER:-}" = debian ]; then
  echo "FACTLENS_JUPYTER=debian: using Debian's classic notebook instead of .venv"
  [ -x /usr/bin/jupyter-nbconvert ] || install_debian_jupyter || { echo "!! apt-get install failed" >&2; exit 1; }
elif venv_ok; then
  echo "up to date: .venv (JupyterLab $(lab_version))"
elif install_venv; then
  echo "installed JupyterLab $(lab_version) into .venv from the local wheel store"
else
  rm -rf .venv
  echo "!! pip could not install JupyterLab offline; FALLING BACK to Debian's classic notebook (no JupyterLab)"
  if [ -x /usr/bin/jupyter-nbconvert ] || install_debian_jupyter; then
    echo "using Debian Jupyter: $(/usr/bin/jupyter-notebook --version 2>/dev/null || echo '?')"
  else
    echo "!! no Jupyter could be installed; notebooks cannot run" >&2
    exit 1
  fi
fi
source scripts/env.sh   # re-pick FACTLENS_JUPYTER_PY now that one exists

step "tslab kernel spec -> .jupyter/"
# Absolute paths, so the kernel starts whatever PATH the server was launched with. The kernel is
# kernel-config/tslab-kernel.js: tslab, adjusted so notebooks can import from ../src.
node_bin=$(command -v node)
tslab_bin="$FACTLENS_ROOT/node_modules/tslab/bin/tslab"
[ -f "$tslab_bin" ] || { echo "missing $tslab_bin (npm ci failed?)" >&2; exit 1; }
mkdir -p "$JUPYTER_DATA_DIR/kernels/tslab" "$JUPYTER_CONFIG_DIR" "$JUPYTER_RUNTIME_DIR"
sed -e "s#@NODE@#$node_bin#" -e "s#@ROOT@#$FACTLENS_ROOT#" \
  kernel-config/kernels/tslab/kernel.json.template > "$JUPYTER_DATA_DIR/kernels/tslab/kernel.json"
rm -f "$JUPYTER_CONFIG_DIR"/jupyter_server_config.* "$JUPYTER_CONFIG_DIR"/jupyter_notebook_config.*
cp kernel-config/jupyter/jupyter_*_config.py "$JUPYTER_CONFIG_DIR/"
# JupyterLab's default settings (no news prompt: there is no network) live in its app dir.
if [ -d .venv/share/jupyter/lab ]; then
  mkdir -p .venv/share/jupyter/lab/settings
  cp kernel-config/jupyter/lab-overrides.json .venv/share/jupyter/lab/settings/overrides.json
fi
echo "kernel: $JUPYTER_DATA_DIR/kernels/tslab/kernel.json"

step "git filter for notebooks"
# .gitattributes sends notebooks/*.ipynb through scripts/nb-clean.js: git stores them without outputs,
# so running and saving a notebook in JupyterLab leaves the checkout clean (outputs: out/notebooks/).
if git -C "$FACTLENS_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$FACTLENS_ROOT" config filter.factlens-notebook.clean "node scripts/nb-clean.js"
  git -C "$FACTLENS_ROOT" config filter.factlens-notebook.smudge cat
  echo "filter.factlens-notebook set (git config of this clone)"
else
  echo "not a git checkout: skipped"
fi

step "Chromium (browser test)"
if [ -x /usr/bin/chromium ]; then   # the path test/notebooks/browser.test.ts launches
  echo "present: /usr/bin/chromium"
elif [ "${FACTLENS_SKIP_CHROMIUM:-}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "skipped (not root, no apt-get, or FACTLENS_SKIP_CHROMIUM=1): test/notebooks/browser.test.ts will skip or fail"
else
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "installed $(chromium --version 2>/dev/null | tail -1)"
fi

echo "setup took $((SECONDS - t0)) s"
if [ "${FACTLENS_SKIP_NOTEBOOKS:-}" = 1 ]; then
  echo "FACTLENS_SKIP_NOTEBOOKS=1: not executing the notebooks"
else
  step "notebooks"
  npm run --silent notebooks
fi
