"""A clean copy of the workflow for the benchmarks that run it (the tests have the same in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("workflow", "config", "profiles", "src", "docs")  # what a run reads besides the Snakefile


def copy_workflow(dest: Path) -> Path:
    """The Snakefile and the folders a run reads, copied into `dest` (caches left out)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", dest)
    for folder in PARTS:
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest
