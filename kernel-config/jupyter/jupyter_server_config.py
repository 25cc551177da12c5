# Jupyter Server / JupyterLab settings for this project; scripts/setup.sh copies this file to
# .jupyter/config/ (JUPYTER_CONFIG_DIR, set by scripts/env.sh, which also exports FACTLENS_ROOT).
import os

c = get_config()  # noqa: F821 (provided by Jupyter's config loader)
c.ServerApp.open_browser = False
c.ServerApp.ip = "127.0.0.1"  # loopback only
c.ServerApp.terminals_enabled = False
c.LabApp.news_url = None  # no network here; see also lab-overrides.json
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.MappingKernelManager.default_kernel_name = "tslab"
if os.environ.get("FACTLENS_ROOT"):
    # Checkpoints under .jupyter/, not as .ipynb_checkpoints/ beside the committed notebooks.
    c.FileCheckpoints.checkpoint_dir = os.path.join(os.environ["FACTLENS_ROOT"], ".jupyter", "checkpoints")
