# The same settings for Debian's classic notebook 6 (the fallback where pip cannot install JupyterLab).
import os

c = get_config()  # noqa: F821
c.NotebookApp.open_browser = False
c.NotebookApp.ip = "127.0.0.1"
c.MappingKernelManager.default_kernel_name = "tslab"
if os.environ.get("FACTLENS_ROOT"):
    c.FileCheckpoints.checkpoint_dir = os.path.join(os.environ["FACTLENS_ROOT"], ".jupyter", "checkpoints")
    # plotly.js for the figures' HTML fallback (the classic notebook has no plotly renderer): /static/plotly.min.js
    c.NotebookApp.extra_static_paths = [os.path.join(os.environ["FACTLENS_ROOT"], "node_modules", "plotly.js-dist-min")]
