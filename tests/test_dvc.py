"""DVC round trip on the tiny config: dvc repro, idempotent rerun, push to a local remote, fresh clone, pull,
and then Snakemake has nothing to do (file times are not kept by DVC)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.integration
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]


def _run(cmd: list[str], cwd) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def test_dvc_repro_push_clone_pull_leaves_nothing_to_do(tmp_path):
    first = tmp_path / "first"
    for name in _run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).split():
        if (REPO / name).exists() and name != "dvc.lock":  # the lock belongs to the default config's outputs
            (first / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, first / name)
    config = _merge(yaml.safe_load((REPO / "config/config.yaml").read_text()),
                    yaml.safe_load((REPO / "config/test.yaml").read_text()))
    (first / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _run(["git", "init", "-q"], first)
    _run(GIT + ["add", "-A"], first)
    _run(GIT + ["commit", "-q", "-m", "tiny"], first)

    _run(["dvc", "repro"], first)
    assert (first / "report/index.html").exists() and (first / "dvc.lock").exists()
    lock = (first / "dvc.lock").read_bytes()
    again = _run(["dvc", "repro"], first)
    assert again.count("didn't change, skipping") == 4  # data, train, studies, report
    assert (first / "dvc.lock").read_bytes() == lock  # byte-stable outputs: nothing to rewrite
    _run(["dvc", "repro", "--force", "report"], first)  # rerunning a stage on unchanged inputs changes no hash
    assert (first / "dvc.lock").read_bytes() == lock
    assert _run(["dvc", "status"], first).strip().endswith("Data and pipelines are up to date.")
    assert "Nothing to be done" in _run(["snakemake", "-n"], first)
    metrics = _run(["dvc", "metrics", "show"], first)
    assert "digits.aug.recipe_test_error" in metrics and "log10_min_sigma_min_over_tolerance" in metrics

    _run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], first)
    _run(["dvc", "push"], first)
    _run(GIT + ["add", "-A"], first)
    _run(GIT + ["commit", "-q", "-m", "results"], first)

    second = tmp_path / "second"
    _run(["git", "clone", "-q", str(first), str(second)], tmp_path)
    _run(["dvc", "pull"], second)
    assert (second / "report/index.html").read_text() == (first / "report/index.html").read_text()
    assert (second / "results/runs/digits/standard/aug/seed1/base/tau_state.pt").exists()
    assert "Nothing to be done" in _run(["snakemake", "-n"], second)
