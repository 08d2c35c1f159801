"""Stage `notebook`: the exploration notebook, executed with this run's outputs and saved with its outputs.

The source notebook ships with the package (notebooks/explore.ipynb). Its cell tagged `parameters` holds the
paths it reads; they are replaced by this run's paths (as papermill does), the notebook is executed with
nbclient in a Python kernel, and saved as report/explore.ipynb, so it opens with its tables and figures in
Jupyter or any notebook viewer. No execution times are recorded, so the same results give the same notebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from globalmin.runinfo import write_text

PACKAGE_DATA = ("notebooks/explore.ipynb",)
SOURCE = Path(__file__).parent / "notebooks" / "explore.ipynb"


def parameters_source(paths: dict[str, str]) -> str:
    """The parameters cell: one assignment per path."""
    lines = ["# Paths to this run's outputs, written by the pipeline's notebook rule (relative to the repository)."]
    return "\n".join(lines + [f"{name} = {str(value)!r}" for name, value in paths.items()])


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Execute the notebook with inputs' paths (tables, claims, runs, data folders) into outputs['notebook']."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(SOURCE, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    cell.source = parameters_source({"TABLES": inputs["tables"], "CLAIMS": inputs["claims"],
                                     "RUNS_DIR": inputs["runs_dir"], "DATA_DIR": inputs["data_dir"]})
    # shutdown_kernel "immediate": the kernel is stopped as soon as the last cell's outputs are in, instead of
    # asked to tear its interpreter (torch included) down and waited for (a part of the job, timed once by hand)
    client = NotebookClient(notebook, timeout=cfg.get("timeout", 600), kernel_name="python3", record_timing=False,
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(Path.cwd())}})
    client.execute()
    write_text(outputs["notebook"], nbformat.writes(notebook) + "\n")
