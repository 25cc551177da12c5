"""Execute notebooks headlessly through Jupyter (nbconvert's ExecutePreprocessor, tslab kernel) and
export them: out/notebooks/<name>.ipynb (executed, signed so JupyterLab trusts its scripts) and
out/notebooks/<name>.html. Exits 1 naming the notebook and cell of the first error in each notebook.

Usage: run_notebooks.py NOTEBOOK_DIR OUT_DIR [name|path ...]   (names with or without .ipynb; none = all)
Runs with the Python that has Jupyter (.venv, or Debian's): nbconvert 6.5+ / nbclient 0.7+.
"""
import os
import sys
import time

import nbformat
from nbformat.sign import NotebookNotary
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOTLY_JS = os.path.join(ROOT, "node_modules", "plotly.js-dist-min", "plotly.min.js")
PLOTLY_MIME = "application/vnd.plotly.v1+json"
CELL_TIMEOUT = int(os.environ.get("FACTLENS_CELL_TIMEOUT", "1800"))  # s; sweeps on a CPU are slow
# tslab prints these to stderr for errors that escape a cell's own promise; the cell still says "ok".
ESCAPED_MARKERS = ("UncaughtException:", "UnhandledPromiseRejection:")


class Runner(ExecutePreprocessor):
    """Remembers which cell is running, so a failure can be reported by index."""

    current = -1

    def preprocess_cell(self, cell, resources, index):
        self.current = index
        t0 = time.time()
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            self.times.append((time.time() - t0, index))


def cell_text(cell):
    """The error text a tslab cell produced: its stderr and error outputs."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("%s: %s" % (out.get("ename"), out.get("evalue")))
    return "".join(parts).strip()


def escaped_error(nb):
    for i, cell in enumerate(nb.cells):
        text = cell_text(cell) if cell.cell_type == "code" else ""
        if any(m in text for m in ESCAPED_MARKERS):
            return i
    return None


def describe(nb, path, index):
    """'FAILED notebooks/x.ipynb, cell 4 of 9 (code cell 2): <first line>' and the cell's error text; 1-based."""
    cell = nb.cells[index]
    code_no = sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")
    first = next((l for l in cell.source.splitlines() if l.strip()), "")
    return "FAILED %s, cell %d of %d (code cell %d): %s\n%s" % (
        path, index + 1, len(nb.cells), code_no, first[:80],
        cell_text(cell) or "(the kernel reported an error but printed nothing)")


def has_figures(nb):
    return any(PLOTLY_MIME in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))


def with_plotly(html):
    """The exported page with plotly.js inlined once in its head: figures' HTML fallbacks draw with it
    offline. Only the export carries it (~4.8 MB); notebooks hold figures as JSON."""
    with open(PLOTLY_JS, encoding="utf-8") as f:
        js = f.read().replace("</script", "<\\/script")
    return html.replace("</head>", '<script type="text/javascript">%s</script>\n</head>' % js, 1)


def run_one(path, out_dir):
    name = os.path.splitext(os.path.basename(path))[0]
    nb = nbformat.read(path, as_version=4)
    runner = Runner(timeout=CELL_TIMEOUT, kernel_name="tslab", startup_timeout=120)
    runner.times = []
    t0 = time.time()
    failure = None
    try:
        # metadata.path = the notebook's folder: the kernel's cwd, so `import ... from '../src'` resolves.
        runner.preprocess(nb, {"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
        bad = escaped_error(nb)
        if bad is not None:
            failure = describe(nb, path, bad)
    except CellExecutionError:
        failure = describe(nb, path, runner.current)
    except Exception as e:  # kernel died, timeout: still name the cell
        failure = "FAILED %s, cell %d of %d: %s: %s" % (path, runner.current + 1, len(nb.cells), type(e).__name__, e)
    secs = time.time() - t0
    # Written even on failure: the partial outputs are what one needs to debug it.
    executed = os.path.join(out_dir, name + ".ipynb")
    NotebookNotary().sign(nb)
    nbformat.write(nb, executed)
    html, _ = HTMLExporter().from_notebook_node(nb)
    if has_figures(nb):
        html = with_plotly(html)
    with open(os.path.join(out_dir, name + ".html"), "w", encoding="utf-8") as f:
        f.write(html)
    status = "FAILED" if failure else "ok"
    slowest = sorted(runner.times, reverse=True)[:3]
    slow = ", ".join("cell %d %.1f s" % (i + 1, t) for t, i in slowest if t >= 1.0)
    print("%-32s %6.1f s  %s%s" % (name, secs, status, "  (slowest: %s)" % slow if slow else ""), flush=True)
    return failure


def main(argv):
    nb_dir, out_dir, names = argv[0], argv[1], argv[2:]
    os.makedirs(out_dir, exist_ok=True)
    if names:
        # A name in notebooks/ ("01-causal-tracing"), or a path to any .ipynb.
        paths = [n if os.path.isfile(n) else os.path.join(nb_dir, n if n.endswith(".ipynb") else n + ".ipynb") for n in names]
    else:
        paths = sorted(os.path.join(nb_dir, f) for f in os.listdir(nb_dir) if f.endswith(".ipynb"))
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing or not paths:
        print("no such notebook: %s" % (", ".join(missing) or nb_dir + "/*.ipynb"), file=sys.stderr)
        return 2
    t0 = time.time()
    failures = [f for f in (run_one(p, out_dir) for p in paths) if f]
    print("%d notebook(s) in %.1f s; outputs in %s" % (len(paths), time.time() - t0, out_dir))
    for f in failures:
        print("\n" + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
