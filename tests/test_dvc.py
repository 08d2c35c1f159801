"""DVC on the tiny config: the round trip (dvc repro, idempotent rerun, push to a local remote, fresh clone, pull,
and then Snakemake has nothing to do: file times are not kept by DVC), and experiments (docs/dvc-experiments.md):
`dvc exp run -S` sets params.yaml, a comment-free layer over config/config.yaml, and reruns only what the setting
feeds, in the workspace, in a temporary copy and from the queue."""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides
from dvc.utils.serialize import dumps_yaml, modify_yaml

from conftest import REPO, TABLE1_ONLY, merged

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
CONFIG = REPO / "config" / "config.yaml"
LAYER = REPO / "params.yaml"


def _run(cmd: list[str], cwd, stderr: bool = True) -> str:
    """The command's output (standard output only where `stderr` is false); a failure shows both."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr if stderr else done.stdout


def _copy_repository(dest: Path) -> None:
    """The repository's tracked (and not ignored) files into `dest`, but dvc.lock, which belongs to the default
    config's outputs."""
    for name in _run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).split():
        if (REPO / name).exists() and name != "dvc.lock":
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


def _commit(repo: Path, message: str) -> None:
    _run(GIT + ["add", "-A"], repo)
    _run(GIT + ["commit", "-q", "-m", message], repo)


def _stage_params() -> dict[str, dict[str, list[str]]]:
    """dvc.yaml's params: stage -> params file -> the key paths it lists."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: {file: keys for entry in stage.get("params", []) for file, keys in entry.items()}
            for name, stage in stages.items()}


def test_params_layer_holds_every_section_and_no_value():
    """params.yaml, as committed, overrides nothing and lists every section of the config and of the schema (DVC's
    -S sets only keys under a section the file has), in DVC's own layout, so DVC rewrites no line it does not set."""
    sections = list(yaml.safe_load(CONFIG.read_text()))
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert set(sections) == set(schema["properties"])
    assert yaml.safe_load(LAYER.read_text()) == {section: {} for section in sections}
    assert LAYER.read_text() == dumps_yaml({section: {} for section in sections})  # same order, DVC's layout


def test_dvc_sets_a_value_in_the_layer_and_changes_nothing_else(tmp_path):
    layer = tmp_path / "params.yaml"
    shutil.copy(LAYER, layer)
    with modify_yaml(layer):  # DVC's load and dump of a file it sets, unchanged
        pass
    assert layer.read_bytes() == LAYER.read_bytes()
    apply_overrides(layer, ["++train.lr=0.02", "++experiment.seeds=[0,1]"])  # what `dvc exp run -S` does
    assert layer.read_text() == LAYER.read_text().replace("train: {}\n", "train:\n  lr: 0.02\n").replace(
        "experiment: {}\n", "experiment:\n  seeds:\n  - 0\n  - 1\n")


def test_dvc_rewrites_a_commented_config_in_its_own_layout(tmp_path):
    """Why experiments set params.yaml and never config/config.yaml: DVC's -S rewrites the whole file it sets (every
    list in block style, every null as an empty value, a comment after a list moved or dropped), here on the config
    as it is now; the values are kept."""
    config = tmp_path / "config.yaml"
    shutil.copy(CONFIG, config)
    apply_overrides(config, ["train.lr=0.02"])
    changed = [line for line in difflib.ndiff(CONFIG.read_text().splitlines(), config.read_text().splitlines())
               if line.startswith(("- ", "+ "))]
    assert len(changed) > 2, changed  # more than the one line it sets
    expected = yaml.safe_load(CONFIG.read_text())
    expected["train"]["lr"] = 0.02
    assert yaml.safe_load(config.read_text()) == expected


def test_every_stage_reads_the_same_sections_from_both_files_and_none_twice_in_part():
    """dvc.yaml: each stage lists the same key paths of config/config.yaml and of params.yaml; every section of the
    config is read by a stage; no key path lies inside another one (DVC's `exp show` would merge the two and show
    a list twice: experiment.datasets as ['digits', 'digits'])."""
    params = _stage_params()
    for stage, files in params.items():
        assert set(files) == {"config/config.yaml", "params.yaml"}, stage
        assert files["config/config.yaml"] == files["params.yaml"], stage
    listed = [key for files in params.values() for key in files["params.yaml"]]
    assert {key.split(".")[0] for key in listed} == set(yaml.safe_load(CONFIG.read_text()))
    assert [(a, b) for a in listed for b in listed if b.startswith(a + ".")] == []


@pytest.mark.integration
def test_dvc_repro_push_clone_pull_leaves_nothing_to_do(tmp_path):
    first = tmp_path / "first"
    _copy_repository(first)
    config = merged(yaml.safe_load(CONFIG.read_text()), yaml.safe_load((REPO / "config/test.yaml").read_text()))
    # the whole pipeline from nothing, at its smallest: Table 1's runs of one seed, with and without augmentation
    config = merged(config, {**TABLE1_ONLY, "experiment": {**TABLE1_ONLY["experiment"], "seeds": [0]}})
    (first / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _run(["git", "init", "-q"], first)
    _commit(first, "tiny")

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
    assert "digits.sgd.aug.recipe_test_error" in metrics and "log10_min_sigma_min_over_tolerance" in metrics

    _run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], first)
    _run(["dvc", "push"], first)
    _commit(first, "results")

    second = tmp_path / "second"
    _run(["git", "clone", "-q", str(first), str(second)], tmp_path)
    _run(["dvc", "pull"], second)
    assert (second / "report/index.html").read_text() == (first / "report/index.html").read_text()
    assert (second / "results/runs/digits/standard/aug/seed0/base/tau_state.pt").exists()
    assert "Nothing to be done" in _run(["snakemake", "-n"], second)


def _jobs(output: str) -> list[str]:
    """The rules of the jobs Snakemake ran, as its log names them (`rule all` left out)."""
    return [rule for rule in re.findall(r"^(?:local)?rule (\w+):", output, re.M) if rule != "all"]


def _ran_only_the_report_stage(output: str) -> None:
    for stage in ("data", "train", "studies"):
        assert f"Stage '{stage}' didn't change, skipping" in output, output[-3000:]
    assert "Running stage 'report'" in output


@pytest.mark.integration
@pytest.mark.usefixtures("alone_in_workdir")  # copies the shared run whole
def test_an_experiment_round_reruns_only_what_its_setting_feeds(workdir, tmp_path):
    """One round of docs/dvc-experiments.md on the tiny DAG that Snakemake built (the session's `workdir`):
    `dvc repro` first (Snakemake finds nothing to do; DVC caches what it built), then report-stage settings in the
    workspace, in a temporary copy and from the queue; config/config.yaml keeps every byte and `dvc exp show` lists
    each experiment's values."""
    repo = tmp_path / "exp"
    shutil.copytree(workdir, repo, symlinks=True)  # the outputs, as Snakemake left them
    _copy_repository(repo)
    layer = merged(yaml.safe_load(LAYER.read_text()), yaml.safe_load((REPO / "config/test.yaml").read_text()))
    (repo / "params.yaml").write_text(dumps_yaml(layer))  # the tiny config as the layer, in DVC's layout
    _run(["git", "init", "-q"], repo)
    _commit(repo, "tiny")
    assert _run(["dvc", "repro"], repo).count("Nothing to be done") == 4  # one per stage
    _commit(repo, "results")
    config, base_layer = CONFIG.read_bytes(), (repo / "params.yaml").read_text()
    model = repo / "results/runs/digits/standard/aug/seed0/base/model.pt"
    stamp = model.stat().st_mtime_ns

    first = _run(["dvc", "exp", "run", "-n", "retitled", "-S", "++report.title=Experiment one"], repo)
    _ran_only_the_report_stage(first)
    assert _jobs(first) == ["report"] and model.stat().st_mtime_ns == stamp
    assert "Experiment one" in (repo / "report/index.html").read_text()
    assert (repo / "config/config.yaml").read_bytes() == config
    assert (repo / "params.yaml").read_text() == base_layer.replace("report: {}\n",
                                                                    "report:\n  title: Experiment one\n")
    assert "Nothing to be done" in _run(["snakemake", "-n"], repo)  # plain Snakemake reads the same layer

    _run(["git", "checkout", "HEAD", "--", "params.yaml", "dvc.lock"], repo)  # back to the baseline
    _run(["dvc", "checkout"], repo)
    second = _run(["dvc", "exp", "run", "--temp", "-n", "alpha", "-S", "++claims.alpha=0.1"], repo)
    _ran_only_the_report_stage(second)
    assert "aggregate" in _jobs(second) and not [j for j in _jobs(second) if j.startswith(("train_", "prepare"))]
    assert (repo / "params.yaml").read_text() == base_layer  # a temporary copy ran it: the workspace is as it was

    _run(["dvc", "exp", "run", "--queue", "-n", "queued", "-S", "++report.title=Queued"], repo)
    try:
        third = _run(["dvc", "exp", "run", "--run-all"], repo)
    finally:
        _run(["dvc", "queue", "stop"], repo)  # the worker would idle a while longer
    _ran_only_the_report_stage(third)
    assert _jobs(third) == ["report"]

    shown = json.loads(_run(["dvc", "exp", "show", "--json"], repo, stderr=False))
    runs = {exp["name"]: exp["revs"][0] for row in shown for exp in row.get("experiments") or []}
    layers = {name: run["data"]["params"]["params.yaml"]["data"] for name, run in runs.items()}
    assert layers["retitled"]["report"] == {"title": "Experiment one"} and layers["retitled"]["claims"] == {}
    assert layers["alpha"]["claims"] == {"alpha": 0.1} and layers["alpha"]["report"] == {}
    assert layers["queued"]["report"] == {"title": "Queued"}
    datasets = yaml.safe_load(CONFIG.read_text())["experiment"]["datasets"]
    for row in [*shown, *runs.values()]:
        if row["rev"] != "workspace":
            assert row["data"]["params"]["config/config.yaml"]["data"]["experiment"]["datasets"] == datasets
    for name, run in runs.items():
        assert _run(["git", "show", f"{run['rev']}:config/config.yaml"], repo, stderr=False).encode() == config, name
