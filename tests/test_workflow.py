"""Integration: the whole Snakemake DAG on the tiny config, in a temporary copy of the workflow."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.integration


def _snakemake(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["snakemake", *args], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("workflow")
    shutil.copy(REPO / "Snakefile", work)
    for folder in ("workflow", "config", "profiles", "src"):
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = _snakemake(work, "--cores", "2", "--configfile", "config/test.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    return work


def test_dag_builds_the_report(workdir):
    html = (workdir / "report" / "index.html").read_text()
    assert "Table 1 analog" in html and "A(base)" in html
    table = (workdir / "report" / "tables" / "table1.csv").read_text()
    assert "digits,1297,verified at τ (2/2 runs" in table and "at init 2/2" in table and ",no," in table and ",yes," in table
    for aug in ("aug", "noaug"):
        for seed in (0, 1):
            cert = json.loads((workdir / f"results/runs/digits/{aug}/seed{seed}/recipe/certificate.json").read_text())
            assert cert["n"] == 1297 and f"digits/{aug}/seed{seed}/recipe" in html
    assert "τ ablation" in html and (workdir / "results/runs/digits/aug/seed1/recipe_0.5/certificate.json").exists()
    ids = [c["id"] for c in json.loads((workdir / "results" / "claims.json").read_text())["claims"]]
    assert ids == ["R1", "R2", "R3", "F1", "F2", "A1", "A2", "A3", "A4", "A5", "A8", "R4", "B1", "B2", "B3", "B4"]
    assert all((workdir / "report" / "figures" / f).stat().st_size > 0
               for f in ("curves.png", "curves.pdf", "sigma_min.png", "fc_theory.png", "ntk.png", "beyond_ntk.png",
                         "local_minima.png"))
    assert "Fully-connected theory check" in html and "Beyond the NTK regime" in html
    assert "Local minima against depth and width" in html and "median_certified_loss" in html
    moved = json.loads((workdir / "results/studies/beyond_ntk/runs/digits/aug/seed1/base.json").read_text())
    assert moved["subset_size"] == 8 and moved["relative_weight_movement"] > 0 and moved["kernel_change"] > 0


def test_second_run_has_nothing_to_do(workdir):
    again = _snakemake(workdir, "-n", "--configfile", "config/test.yaml")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_editing_plot_code_reruns_only_figures_and_report(workdir):
    figures = workdir / "src" / "globalmin" / "figures.py"
    figures.write_text(figures.read_text() + "\n")
    plan = _snakemake(workdir, "-n", "--configfile", "config/test.yaml", "--quiet", "rules")
    assert plan.returncode == 0
    rules = {line.split()[0] for line in plan.stdout.splitlines() if line.strip() and line.split()[-1].isdigit()}
    assert rules == {"figures", "fc_theory_figure", "ntk_figure", "beyond_ntk_figure", "local_minima_figure", "report",
                     "all", "total"}


def test_lint_is_clean_and_snakemake_report_works(workdir):
    lint = _snakemake(workdir, "--lint", "--configfile", "config/test.yaml")
    assert "good condition" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    prov = _snakemake(workdir, "--configfile", "config/test.yaml", "--report", "report/provenance.html")
    assert prov.returncode == 0, prov.stderr[-2000:]
    assert (workdir / "report" / "provenance.html").stat().st_size > 10000


def test_bad_config_fails_before_any_job(workdir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe:\n  tau_fraction: 1.5\n")
    run = _snakemake(workdir, "-n", "--configfile", "config/test.yaml", str(bad))
    said = run.stdout + run.stderr
    assert run.returncode != 0 and "'tau_fraction'" in said and "exclusiveMaximum" in said
    assert "Job stats" not in said and not (workdir / "logs" / "bad").exists()
    bad.write_text("model:\n  wide_width: 64\n")
    run = _snakemake(workdir, "-n", "--configfile", "config/test.yaml", str(bad))
    said = run.stdout + run.stderr
    assert run.returncode != 0 and "model.wide_width = 64 is below n = 1297" in said and "Job stats" not in said


def _job_counts(text: str) -> dict[str, int]:
    table = text.split("Job stats:")[1].split("Reasons:")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_paper_profile_lists_the_full_replication(workdir):
    plan = _snakemake(workdir, "-n", "--configfile", "config/paper.yaml")
    assert plan.returncode == 0, plan.stderr[-2000:]
    text = plan.stdout + plan.stderr
    counts = _job_counts(text)
    base = counts["train_base"] + counts["train_base_ablated"]
    assert base == 6 * 2 * 5 and counts["train_recipe"] == 6 * 2 * 5 + 2 * 5 * 2 and counts["fetch_raw"] == 6
    for dataset in ("mnist", "kmnist", "cifar10", "cifar100", "svhn", "semeion"):
        assert f"results/runs/{dataset}/aug/seed4/recipe/metrics.json" in text
    assert re.search(r"input: data/prepared/cifar10.pt, results/runs/cifar10/noaug/seed0/base/tau_state_0.5.pt", text)
    assert re.search(r"input: data/prepared/svhn.pt, results/runs/svhn/aug/seed2/base/tau_state.pt", text)


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian package dataset-fashion-mnist is not installed")
def test_fashion_mnist_imported_from_debian_trains_through_the_pipeline(workdir, tmp_path):
    cfg = tmp_path / "fashion.yaml"
    cfg.write_text(f"""
experiment: {{datasets: [fashion_mnist], augmentation: [false], seeds: [0]}}
data:
  fashion_mnist: {{source: import, import_dir: {DEBIAN_FASHION}, train_subset: 400}}
recipe: {{tau_ablation: {{datasets: [], fractions: []}}}}
train: {{threads: 2}}
""")
    run = _snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml", str(cfg))
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((workdir / "data/raw/fashion_mnist/MANIFEST.json").read_text())
    assert manifest["source"] == "import" and len(manifest["files"]) == 4
    table = (workdir / "report/tables/table1.csv").read_text()
    assert "fashion_mnist,400," in table
    metrics = json.loads((workdir / "results/runs/fashion_mnist/noaug/seed0/recipe/metrics.json").read_text())
    assert metrics["n_train"] == 400 and metrics["certificate"]["n"] == 400
