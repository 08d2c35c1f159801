"""Resume: a training job killed mid-run continues from its last atomic checkpoint to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY_MODEL, TINY_TRAIN, base_settings, train_base, train_recipe
from globalmin import api, recipe, runfiles, train


def _base_cmd(data, out, epochs: int) -> list[str]:
    cfg = {**TINY_TRAIN, "epochs": {"plain": epochs, "augmented": epochs},
           "milestones": {"plain": [3], "augmented": [3]}}
    settings = base_settings(TINY_MODEL, cfg, 0.5)
    return [sys.executable, "-m", "globalmin", "train-base", "--data", str(data), "--out-dir", str(out), "--seed", "1",
            "--augment", "aug", "--config", json.dumps(settings)]


def _same_run(a, b, names=("model.pt", "tau_state.pt", "curve.csv", "metrics.json")) -> None:
    for name in names:  # byte for byte: a resumed run is the uninterrupted run
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_sigkill_mid_run_resumes_to_identical_results(digits_file, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_base_cmd(digits_file, ref, 12), check=True, capture_output=True)
    proc = subprocess.Popen(_base_cmd(digits_file, out, 12), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / runfiles.RESUME_FILE).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # let it run into the next epochs
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    done_before = torch.load(out / runfiles.RESUME_FILE, weights_only=True)["iteration"]
    rerun = subprocess.run(_base_cmd(digits_file, out, 12), check=True, capture_output=True, text=True)
    assert f"resuming from iteration {done_before} of" in rerun.stderr
    _same_run(ref, out)
    assert not (out / runfiles.RESUME_FILE).exists()


def test_a_base_run_interrupted_after_tau_restores_its_tau_state_and_resumes(digits_file, tmp_path, monkeypatch,
                                                                             caplog):
    caplog.set_level("INFO")
    cfg = {**TINY_TRAIN, "epochs": {"plain": 4, "augmented": 4}}
    clean = train_base(digits_file, tmp_path / "clean", 5, False, TINY_MODEL, cfg, 0.25)
    stop_at = clean["schedule"]["tau"] + clean["schedule"]["iters_per_epoch"] + 3  # an epoch past tau
    real_run = train.Loop.run

    def interrupted(self, start, stop, phase, before=None, epoch_end=None):
        real_run(self, start, min(stop, stop_at), phase, before, epoch_end)
        raise KeyboardInterrupt("pre-empted")

    monkeypatch.setattr(train.Loop, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_base(digits_file, tmp_path / "resumed", 5, False, TINY_MODEL, cfg, 0.25)
    monkeypatch.setattr(train.Loop, "run", real_run)
    # Snakemake deletes a failed job's declared outputs: the tau-state written before the interruption goes too
    (tmp_path / "resumed" / "tau_state.pt").unlink()
    train_base(digits_file, tmp_path / "resumed", 5, False, TINY_MODEL, cfg, 0.25)
    assert "resuming from iteration" in caplog.text and "starting over" not in caplog.text
    _same_run(tmp_path / "clean", tmp_path / "resumed")


def test_interrupted_recipe_resumes_to_identical_results(digits_file, tmp_path, monkeypatch):
    cfg = {**TINY_TRAIN, "epochs": {"plain": 6, "augmented": 6}}
    train_base(digits_file, tmp_path / "base", 2, False, TINY_MODEL, cfg, 0.3)
    tau_state = tmp_path / "base" / "tau_state.pt"
    clean = train_recipe(digits_file, tau_state, tmp_path / "clean")
    stop_at = clean["schedule"]["tau"] + 2 * clean["schedule"]["iters_per_epoch"]
    real_step = recipe.phase2_step

    def failing_step(*args, **kwargs):
        step = real_step(*args, **kwargs)

        def wrapped(it, lr):
            if it == stop_at:
                raise KeyboardInterrupt("pre-empted")
            return step(it, lr)
        return wrapped

    monkeypatch.setattr(recipe, "phase2_step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        train_recipe(digits_file, tau_state, tmp_path / "resumed")
    monkeypatch.setattr(recipe, "phase2_step", real_step)
    folder = tmp_path / "resumed"
    assert (folder / runfiles.RESUME_FILE).exists() and not (folder / "metrics.json").exists()
    (tmp_path / "resumed" / "certificate.json").unlink()  # Snakemake deletes a failed job's declared outputs

    def no_second_certificate(*args, **kwargs):
        raise AssertionError("a resumed A(base) run must reuse its certificate, not recompute it")

    monkeypatch.setattr(api.Recipe, "transition", no_second_certificate)  # the switch: perturbation and certificate
    resumed = train_recipe(digits_file, tau_state, tmp_path / "resumed")
    assert resumed["final"] == clean["final"]
    _same_run(tmp_path / "clean", tmp_path / "resumed", ("model.pt", "curve.csv", "metrics.json", "certificate.json"))


def test_resume_file_of_another_config_or_cut_short_is_not_trusted(digits_file, tmp_path, caplog):
    cfg = {**TINY_TRAIN, "epochs": {"plain": 3, "augmented": 3}}
    train_base(digits_file, tmp_path / "a", 0, False, TINY_MODEL, cfg, 0.5)
    reference = json.loads((tmp_path / "a" / "metrics.json").read_text())["final"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / runfiles.RESUME_FILE).write_bytes(b"PK\x03\x04 cut short")
    assert train_base(digits_file, tmp_path / "b", 0, False, TINY_MODEL, cfg, 0.5)["final"] == reference
    assert "ignoring unreadable" in caplog.text
    other = {**TINY_MODEL, "wide_activation": "softplus"}
    state = {"fingerprint": "not this run", "iteration": 21, "run_id": "digits/standard/noaug/seed7/base"}
    torch.save(state, tmp_path / "b" / runfiles.RESUME_FILE)
    train_base(digits_file, tmp_path / "b", 0, False, other, cfg, 0.5)
    # refused, naming both runs
    assert ("digits/standard/noaug/seed0/base: not resuming from" in caplog.text
            and "written by run digits/standard/noaug/seed7/base with another config" in caplog.text)


def test_resume_file_is_written_at_most_every_resume_seconds(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(train.time, "monotonic", lambda: clock[0])
    loop = train.Loop("run", "base", 0, train.Schedule(4, 1, 2), TINY_TRAIN, [], lambda it, lr: None, dict)
    resume = runfiles.Resume(tmp_path, "run", {"seed": 0}, every_seconds=60)

    def saved_iteration() -> int | None:
        return torch.load(resume.path, weights_only=True)["iteration"] if resume.path.exists() else None

    resume.save({}, loop, 1)
    assert saved_iteration() is None  # 0 s since the run started
    clock[0] += 61
    resume.save({}, loop, 2)
    assert saved_iteration() == 2
    clock[0] += 30
    resume.save({}, loop, 3)
    assert saved_iteration() == 2  # 30 s since the last one
    every_epoch = runfiles.Resume(tmp_path / "zero", "run", {"seed": 0}, every_seconds=0)
    every_epoch.save({}, loop, 1)
    assert every_epoch.path.exists()
