"""Integration: the whole Snakemake DAG on the tiny config, in a temporary copy of the workflow (the session
fixture `workdir`)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import copy_workflow, merged, snakemake
from globalmin import deps
from globalmin.cli import COMMANDS

pytestmark = pytest.mark.integration


def test_dag_builds_the_report(workdir):
    html = (workdir / "report" / "index.html").read_text()
    assert "Table 1 analog" in html and "Conditions: what phase 2 reaches from each τ" in html
    table = (workdir / "report" / "tables" / "table1.csv").read_text()
    assert 'digits,sgd,1297,"verified at τ (2/2 runs' in table and 'digits,adam,1297,"verified at τ' in table
    assert "at init 2/2" in table and ",no," in table and ",yes," in table
    conditions = (workdir / "results" / "tables" / "conditions.csv").read_text()
    assert "digits,random_labels,sgd,cross_entropy,random,1297,1297," in conditions
    # the sharp test: at m_H = n/2 no run certifies rank n, at m_H = n every run does
    sweep = (workdir / "results" / "tables" / "sweep.csv").read_text()
    assert "sgd,squared,0.5,648,1297,1,0/1," in sweep and "sgd,squared,1,1297,1297,1,1/1," in sweep
    for aug in ("aug", "noaug"):
        for seed in (0, 1):
            cert = json.loads((workdir / f"results/runs/digits/standard/{aug}/seed{seed}/recipe/certificate.json")
                              .read_text())
            assert cert["n"] == 1297 and f"digits/standard/{aug}/seed{seed}/recipe" in html
    assert (workdir / "results/runs/digits/adam/noaug/seed0/recipe_0.5/certificate.json").exists()
    ledger = json.loads((workdir / "results" / "claims.json").read_text())
    assert [c["id"] for c in ledger["claims"]] == ["R1", "R2", "R3", "R5", "R6", "F1", "A1", "A2", "A3", "A4", "A5",
                                                   "A8", "R4", "B1", "B4", "B5"]
    assert [c["id"] for c in ledger["checks"]] == ["C1", "C2", "C3", "C4", "F2", "B2", "B3"]
    assert all(c["verdict"] == "passed" for c in ledger["checks"])
    for name in ("curves", "phase2", "gap", "sigma_min", "sweep", "sweep_horizon", "fc_theory", "ntk", "beyond_ntk",
                 "local_minima", "local_minima_gap"):
        assert (workdir / "report" / "figures" / f"{name}.png").stat().st_size > 0, name
    assert "Fully-connected theory check" in html and "Beyond the NTK regime" in html
    assert "Local minima against depth and width" in html and "NaN" not in html
    summary = (workdir / "report" / "summary.md").read_text()
    assert "## Claims" in summary and "torch 2." in summary
    notebook = json.loads((workdir / "report" / "explore.ipynb").read_text())
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # redrawn and new figures, executed
    assert 'href="explore.ipynb"' in html
    # files a team can share: group and others can read what the pipeline wrote (umask 022 here)
    for path in ("report/index.html", "report/figures/gap.png", "results/claims.json", "data/prepared/digits.pt",
                 "results/runs/digits/standard/aug/seed0/base/model.pt"):
        assert (workdir / path).stat().st_mode & 0o044 == 0o044, path


@pytest.mark.usefixtures("alone_in_workdir")
def test_second_run_has_nothing_to_do(workdir):
    again = snakemake(workdir, "-n", "--configfile", "config/test.yaml")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def _planned_jobs(work: Path) -> list[dict[str, str]]:
    """The jobs `snakemake -n -p` plans: each job's rule, its input line and its shell command."""
    plan = snakemake(work, "-n", "-p", "--configfile", "config/test.yaml")
    assert plan.returncode == 0, plan.stderr[-2000:]
    jobs = []
    for block in re.split(r"^\[.*?\]\n", plan.stdout + plan.stderr, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule and rule.group(1) != "all":
            command = re.search(r"^Shell command: globalmin ([\w-]+)", block, flags=re.M)
            inputs = re.search(r"^\s+input: (.*)$", block, flags=re.M)
            jobs.append({"rule": rule.group(1), "command": command.group(1) if command else "",
                         "inputs": inputs.group(1) if inputs else ""})
    return jobs


@pytest.mark.usefixtures("alone_in_workdir")
def test_editing_a_function_reruns_exactly_the_jobs_whose_commands_import_it(workdir, tmp_path):
    work = tmp_path / "edit"
    shutil.copytree(workdir, work, symlinks=True)
    claims_py = work / "src" / "globalmin" / "claims.py"
    claims_py.write_text(claims_py.read_text().replace('"""One verdict from several parts',
                                                        '"""One verdict (edited) from several parts'))
    jobs = _planned_jobs(work)
    importing = {c for c in COMMANDS if "src/globalmin/claims.py" in deps.command_sources(c, work / "src" / "globalmin",
                                                                                        work)}
    assert {"aggregate", "fc-theory", "ntk", "beyond-ntk", "local-minima", "claims"} <= importing
    assert not {"train-base", "train-recipe", "prepare"} & importing
    direct = [j for j in jobs if "src/globalmin/claims.py" in j["inputs"]]
    # every job whose command imports claims.py reruns because of it, and every other planned job only because
    # an input of it is rebuilt (the figures and the report downstream)
    assert {j["command"] for j in direct} == importing - {c for c in importing if c.startswith(("fetch", "import",
                                                                                                  "datasets"))}
    assert all(j["command"] in importing for j in direct)
    assert {j["rule"] for j in jobs} - {j["rule"] for j in direct} <= {
        "figure_recipe", "figure_sweep", "figure_fc_theory", "figure_ntk", "figure_beyond_ntk", "figure_local_minima",
        "report", "notebook"}


@pytest.mark.usefixtures("alone_in_workdir")
def test_editing_plot_code_reruns_only_its_figure_and_the_report(workdir, tmp_path):
    work = tmp_path / "plot"
    shutil.copytree(workdir, work, symlinks=True)
    figure = work / "src" / "globalmin" / "figures" / "ntk.py"
    figure.write_text(figure.read_text() + "\n")
    assert {j["rule"] for j in _planned_jobs(work)} == {"figure_ntk", "report"}


@pytest.mark.usefixtures("alone_in_workdir")
def test_a_rerun_job_writes_the_same_bytes(workdir, tmp_path):
    work = tmp_path / "bytes"
    shutil.copytree(workdir, work, symlinks=True)
    run = "results/runs/digits/adam/noaug/seed0"
    files = [f"{run}/{d}/{f}" for d in ("recipe", "recipe_0.5") for f in ("metrics.json", "curve.csv", "model.pt",
                                                                          "certificate.json")]
    files += ["report/index.html", "report/summary.md", "report/figures/gap.png", "report/figures/gap.pdf",
              "report/figures/sigma_min.png", "report/figures/sigma_min.pdf", "report/explore.ipynb",
              "results/tables/runs.csv", "results/claims.json", "results/metrics.json"]
    before = {f: (work / f).read_bytes() for f in files}
    done = snakemake(work, "--cores", "2", "--configfile", "config/test.yaml", "-f", f"{run}/recipe/metrics.json",
                     "report/index.html", "report/explore.ipynb")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train_recipe" in done.stdout + done.stderr
    for name, content in before.items():
        assert (work / name).read_bytes() == content, name


@pytest.mark.usefixtures("alone_in_workdir")
def test_lint_is_clean_and_snakemake_report_works(workdir):
    lint = snakemake(workdir, "--lint", "--configfile", "config/test.yaml")
    assert "good condition" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    prov = snakemake(workdir, "--configfile", "config/test.yaml", "--report", "report/provenance.html")
    assert prov.returncode == 0, prov.stderr[-2000:]
    assert (workdir / "report" / "provenance.html").stat().st_size > 10000


@pytest.mark.usefixtures("alone_in_workdir")
@pytest.mark.parametrize("text, expected", [
    ("recipe:\n  tau_fraction: 1.5\n", ["recipe.tau_fraction = 1.5", "exclusiveMaximum"]),
    ("model:\n  wide_width: 64\n", ["model.wide_width = 64 gives m_H = 64, below n = 1297"]),
    ("recipe:\n  tau_fractoin: 0.5\n", ["unknown key 'tau_fractoin' in recipe; did you mean 'tau_fraction'?"]),
    ("model:\n  widths: [16, 32]\n  blocks: [1]\n", ["model.widths has 2 stages but model.blocks has 1"]),
])
def test_bad_config_fails_before_any_job(workdir, tmp_path, text, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    run = snakemake(workdir, "-n", "--configfile", "config/test.yaml", str(bad))
    said = run.stdout + run.stderr
    assert run.returncode != 0 and all(e in said for e in expected), said[-2000:]
    assert "Job stats" not in said and len(said.splitlines()) < 15


def test_a_yaml_error_in_the_config_names_file_and_line(tmp_path):
    work = copy_workflow(tmp_path / "yaml")
    config = work / "config" / "config.yaml"
    config.write_text(config.read_text().replace("  tau_fraction: 0.9", "  tau_fraction: [0.9", 1))
    run = snakemake(work, "-n")
    said = run.stdout + run.stderr
    line = next(i for i, t in enumerate(config.read_text().splitlines(), 1) if "tau_fraction: [0.9" in t)
    assert run.returncode != 0 and "config/config.yaml: YAML syntax error at line" in said, said[-2000:]
    assert re.search(rf"line {line}|line {line + 1}", said)


def _job_counts(text: str) -> dict[str, int]:
    table = text.split("Job stats:")[1].split("Reasons:")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.usefixtures("alone_in_workdir")
def test_paper_profile_lists_the_full_replication(workdir):
    budget = workdir / "paper-machine.yaml"  # planned as for a 64 GiB machine: its largest job needs 46 GiB on a CPU
    budget.write_text("resources: {memory_gb: 64}\n")
    plan = snakemake(workdir, "-n", "--configfile", "config/paper.yaml", str(budget))
    assert plan.returncode == 0, plan.stderr[-2000:]
    text = plan.stdout + plan.stderr
    counts = _job_counts(text)
    base = counts["train_base"] + counts["train_base_ablated"]
    assert base == 6 * 2 * 5 and counts["train_recipe"] + counts["train_recipe_ablated"] == 6 * 2 * 5
    assert counts["fetch_raw"] == 6 and counts["beyond_ntk"] == 1
    for dataset in ("mnist", "kmnist", "cifar10", "cifar100", "svhn", "semeion"):
        assert f"results/runs/{dataset}/standard/aug/seed4/recipe/metrics.json" in text
    assert re.search(r"results/runs/cifar10/standard/noaug/seed0/base/tau_state_0.5.pt", text)


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
# a tiny version of a profile: one seed, no augmentation, Table 1's condition, no sweep or early switch
TINY = {"experiment": {"augmentation": [False], "seeds": [0], "conditions": ["standard"]},
        "recipe": {"tau_ablation": {"datasets": [], "conditions": None, "fractions": []}, "horizon": {"epochs": 5}},
        "width_sweep": {"ratios": []}, "train": {"threads": 2}}


def test_the_fashion_profile_plans_its_runs(tmp_path):
    plan = snakemake(copy_workflow(tmp_path / "plan"), "-n", "--configfile", "config/fashion.yaml")
    assert plan.returncode == 0, plan.stderr[-2000:]
    counts = _job_counts(plan.stdout + plan.stderr)
    # standard: 3 seeds x (no aug, aug); adam and random labels: 3 seeds; the sweep's n/2 (both losses) and n (squared)
    assert counts["train_base"] == counts["train_recipe"] == 6 + 3 + 3 + 3 and counts["fetch_raw"] == 1
    assert "train_base_ablated" not in counts  # no early switch in the hour
    assert "results/runs/fashion_mnist/sweep_standard_sq_n2/noaug/seed0/recipe/horizon.csv" in plan.stdout


@pytest.fixture(scope="module")
def own_data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny DAG for the data a user brings, a folder of PNGs (`mine`) and an .npz (`yours`), and, where Debian's
    package is installed, config/fashion.yaml's Fashion-MNIST on a few hundred of its real images through the import
    route (the three data sets in one DAG: its studies and report stage run once, not once per test)."""
    import numpy as np
    from PIL import Image

    work = copy_workflow(tmp_path_factory.mktemp("own"))
    rng = np.random.default_rng(0)
    for c in range(3):  # a folder of 3 classes x 40 grey 10 x 10 PNGs; an .npz of 150 RGB 8 x 8 images
        (work / "mine" / f"c{c}").mkdir(parents=True)
        for k in range(40):
            Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8), "L").save(work / "mine" / f"c{c}/{k}.png")
    np.savez(work / "yours.npz", x=rng.integers(0, 256, (150, 8, 8, 3), dtype=np.uint8), y=np.arange(150) % 4)
    layer = merged(TINY, {"experiment": {"datasets": ["mine", "yours"]},
                          "data": {"mine": {"source": "folder", "path": "mine"},
                                   "yours": {"source": "arrays", "path": "yours.npz", "test_size": 30}}})
    profile = []
    if DEBIAN_FASHION.exists():  # the profile, at a few hundred images and its layout at width 8
        profile = ["config/fashion.yaml"]
        layer = merged(layer, {"experiment": {"datasets": ["fashion_mnist", "mine", "yours"]},
                               "data": {"fashion_mnist": {"train_subset": 300, "test_subset": 500}},
                               "model": {"widths": [8, 8, 8, 8], "blocks": [2, 2, 2, 2]},
                               "train": {"epochs": {"plain": 2, "augmented": 2},
                                         "milestones": {"plain": [1], "augmented": [1]}, "eval_every": 1}})
    (work / "own.yaml").write_text(yaml.safe_dump(layer))
    run = snakemake(work, "--cores", "2", "--configfile", *profile, "config/test.yaml", "own.yaml", "--")
    assert run.returncode == 0, run.stderr[-3000:]
    return work


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian package dataset-fashion-mnist is not installed")
def test_a_tiny_fashion_profile_imports_real_images_and_trains_through_to_the_report(own_data_run):
    """config/fashion.yaml on a few hundred of Debian's real Fashion-MNIST images, through the import route."""
    work = own_data_run
    manifest = json.loads((work / "data/raw/fashion_mnist/MANIFEST.json").read_text())
    assert manifest["source"] == "import" and len(manifest["files"]) == 4
    assert "| fashion_mnist | sgd | 300 |" in (work / "report/summary.md").read_text()
    metrics = json.loads((work / "results/runs/fashion_mnist/standard/noaug/seed0/recipe/metrics.json").read_text())
    assert metrics["n_train"] == 300 and metrics["certificate"]["n"] == 300 and metrics["n_test"] == 500
    assert metrics["certificate"]["method"].startswith("in-place Householder QR")  # the profile's method


def test_your_own_folder_and_array_data_sets_train_through_to_the_report(own_data_run):
    work = own_data_run
    summary = (work / "report/summary.md").read_text()
    assert "| mine | sgd | 96 |" in summary and "| yours | sgd | 120 |" in summary  # a fifth of 120 held out; 30
    metrics = json.loads((work / "results/runs/yours/standard/noaug/seed0/base/metrics.json").read_text())
    assert metrics["n_train"] == 120 and json.loads(
        (work / "results/runs/mine/standard/noaug/seed0/recipe/certificate.json").read_text())["n"] == 96
