"""Code dependencies derived from the package's imports."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO
from globalmin import deps
from globalmin.cli import COMMANDS

SRC = REPO / "src" / "globalmin"


def _sources(command: str) -> set[str]:
    return {Path(p).name if "/figures/" not in p else "figures/" + Path(p).name
            for p in deps.command_sources(command, SRC, REPO)}


def test_a_command_depends_on_its_module_what_it_imports_and_the_cli():
    recipe = _sources("train-recipe")
    assert {"cli.py", "__init__.py", "recipe.py", "train.py", "optimum.py", "certificate.py", "models.py",
            "data.py", "augment.py", "datasets.py", "runinfo.py"} <= recipe
    assert "claims.py" not in recipe and "report.py" not in recipe and "figures/style.py" not in recipe
    assert {"claims.py", "ntk.py"} <= _sources("ntk")  # lazy imports inside functions count too
    figure = _sources("figure-ntk")
    assert {"figures/ntk.py", "figures/style.py", "figures/__init__.py"} <= figure and "ntk.py" not in figure
    report = deps.command_sources("report", SRC, REPO)
    assert "src/globalmin/templates/report.html.j2" in report  # package data named in PACKAGE_DATA


def test_every_command_resolves_and_paths_are_relative_to_the_workflow():
    for command in COMMANDS:
        files = deps.command_sources(command, SRC, REPO)
        assert files and all(not f.startswith("/") and (REPO / f).is_file() for f in files), command


def test_an_import_added_to_a_module_is_followed(tmp_path):
    import shutil

    root = tmp_path / "globalmin"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    deps.direct_imports.cache_clear()
    assert "claims.py" not in {Path(p).name for p in deps.command_sources("train-base", root, tmp_path)}
    base = root / "base.py"
    base.write_text(base.read_text() + "\n\ndef _late():\n    from globalmin import claims  # noqa\n")
    deps.direct_imports.cache_clear()
    assert "claims.py" in {Path(p).name for p in deps.command_sources("train-base", root, tmp_path)}
