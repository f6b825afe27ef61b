"""notebooks/error_analysis.ipynb runs top to bottom on a tiny run."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]


def test_error_analysis_notebook_runs(tiny_run) -> None:  # type: ignore[no-untyped-def]
    nb = nbformat.read(REPO / "notebooks" / "error_analysis.ipynb", as_version=4)
    env = {
        "CAMID_RUN_DIR": str(tiny_run.run_dir),
        "CAMID_EVAL_DIR": str(tiny_run.run_dir / "eval_test"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "macro_f1" in text
