"""Shared fixtures: the real digits prepared once, tiny model/training configs, a runner for short training runs,
and the whole DAG run once on config/test.yaml in a temporary copy of the workflow (for every integration test)."""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

import yaml
from filelock import FileLock
from snakemake.utils import validate

from globalmin import base, conditions, data, recipe

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` layered on a copy of `base` as Snakemake layers config files: mappings merge key by key, any other
    value (a list included) replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def default_config() -> dict[str, Any]:
    """config/config.yaml with the schema's defaults filled in, as the Snakefile validates it."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


DEFAULTS = default_config()
# the condition settings a base run gets (common.smk passes these keys), of the default `standard` condition
STANDARD = {k: v for k, v in conditions.resolve(DEFAULTS, "standard").items()
            if k in ("name", "labels", "label_seed", "loss")}
TINY_MODEL = {"widths": [4], "blocks": [1], "wide_width": None, "wide_activation": "tanh"}
TINY_TRAIN = {**DEFAULTS["train"], "lr": 0.01,
              "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False}, "batch_size": 64,
              "eval_batch_size": 2048, "eval_every": 1, "epochs": {"plain": 2, "augmented": 2},
              "milestones": {"plain": [1], "augmented": [1]}, "lr_gamma": 0.1, "device": "cpu", "bf16": False,
              "threads": 1, "resume_seconds": 0}
RECIPE = {"tau_fraction": 0.5, "noise_on": "wide", "noise_scale": 1e-3, "phase2_trains": "head",
          "certificate_method": "auto", "certificate_scratch": None, "horizon": {"epochs": 0, "lr": "initial"},
          "optimum": {"max_n": 4096, "max_iterations": 2000, "error_bound": 1e-8, "grad_tol": 1e-6}}


def train_base(data_file: Path, out: Path, seed: int, augmented: bool, model: dict[str, Any],
               train: dict[str, Any], tau_fraction: float, ablation: tuple[float, ...] = (),
               condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """One base run through the stage's entry point (as the rule calls it)."""
    cfg = {**base_settings(model, train, tau_fraction, ablation, condition), "seed": seed, "data_seed": seed,
           "augment": augmented}
    return base.run(cfg, {"data": data_file}, {"run_dir": out})


def base_settings(model: dict[str, Any], train: dict[str, Any], tau_fraction: float, ablation: tuple[float, ...] = (),
                  condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """train-base's settings as common.smk writes them, but the seed and augmentation (the CLI's own options):
    the condition's settings over `standard`'s, the data seed null (the run's seed), the automatic certificate."""
    return {"model": model, "train": train, "tau_fraction": tau_fraction, "ablation": list(ablation),
            "condition": {**STANDARD, **(condition or {})}, "data_seed": None,
            "certificate": {"method": "auto", "scratch": None}}


def train_recipe(data_file: Path, tau_state: Path, out: Path, recipe_cfg: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """One A(base) run from one tau-state through the stage's entry point."""
    return recipe.run(recipe_cfg or RECIPE, {"data": data_file, "tau_states": [tau_state]}, {"run_dirs": [out]})[0]


@pytest.fixture(autouse=True, scope="session")
def logs_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Training runs write their watch status and curves under $GLOBALMIN_LOGS (default: ./logs, the repository
    when the tests run there): a temporary folder for the whole session instead (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("logs")
    os.environ["GLOBALMIN_LOGS"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def digits_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's digits, prepared with the default split."""
    path = tmp_path_factory.mktemp("data") / "digits.pt"
    data.prepare("digits", path, {"test_size": 500, "split_seed": 0})
    return path


@pytest.fixture
def tiny() -> dict:
    """Fresh copies of the tiny model, train and recipe sections."""
    return {"model": copy.deepcopy(TINY_MODEL), "train": copy.deepcopy(TINY_TRAIN), "recipe": copy.deepcopy(RECIPE)}


def fresh_python(code: str) -> str:
    """The standard output of `code` run in a fresh interpreter (what a new job's process imports)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def snakemake(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run Snakemake in `cwd`, capturing its output."""
    return subprocess.run(["snakemake", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@functools.cache
def load_benchmark(script: str) -> ModuleType:
    """benchmarks/<script> as a module (the folder is not a package), registered under its name so that the scripts'
    own `from workspace import ...` gets the same module object; the folder is on the path while it loads."""
    name = Path(script).stem
    spec = importlib.util.spec_from_file_location(name, BENCH / script)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


# a copy of the workflow (Snakefile, rules, config, ...) in a folder: the list of what a run reads is said there once
copy_workflow = load_benchmark("workspace.py").copy_workflow


# Layered over config/test.yaml by the round trips that run a DAG of their own (SLURM, dvc repro from nothing):
# Table 1's runs and the studies, without the other bases, the random labels and the width sweep. The standard
# runs' settings, and so their files, are the same as in `workdir`'s run of the whole test config.
TABLE1_ONLY = {"experiment": {"conditions": ["standard"]}, "width_sweep": {"ratios": []},
               "recipe": {"tau_ablation": {"conditions": ["standard"]}}}


def _run_test_dag(folder: Path) -> str | None:
    """The whole DAG on config/test.yaml in a copy of the workflow in `folder`; why it failed, or None."""
    done = snakemake(copy_workflow(folder), "--cores", "2", "--configfile", "config/test.yaml")
    return None if done.returncode == 0 else done.stderr[-3000:]


def _session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of the whole session: under pytest-xdist, the one above every worker's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole DAG run once on config/test.yaml in a temporary copy of the workflow. Under pytest-xdist (the
    README's test command) the first worker that needs it runs it and the others wait on a file lock, so the DAG
    runs once in the session; a failure is kept for every worker to report."""
    shared = _session_folder(tmp_path_factory)
    work, done, failed = shared / "workflow", shared / "workflow.done", shared / "workflow.failed"
    with FileLock(shared / "workflow.lock"):
        if not done.exists() and not failed.exists():
            failure = _run_test_dag(work)
            (done if failure is None else failed).write_text(failure or "")
    assert not failed.exists(), failed.read_text()
    return work


@pytest.fixture
def alone_in_workdir(workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For a test that runs Snakemake in `workdir` (its log, a provenance report, a file beside the config) or copies
    it whole: the shared run is held by this test alone, so that no other worker's test writes in it while one
    copies it (`@pytest.mark.usefixtures("alone_in_workdir")`)."""
    with FileLock(_session_folder(tmp_path_factory) / "workflow.use.lock"):
        yield


# Under pytest-xdist with --dist loadfile each module runs in one worker, and a worker takes the next module when
# it is done: the longest modules go first, so that they start at once and the short ones fill in beside them.
FIRST_MODULES = ("test_slurm.py", "test_workflow.py", "test_dvc.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: FIRST_MODULES.index(item.path.name) if item.path.name in FIRST_MODULES
               else len(FIRST_MODULES))  # stable: the collection order within each rank
