"""base: the schedule, phase 1 equal to base's first tau iterations, tau-states, byte-stable outputs, errors."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import STANDARD, TINY_MODEL, TINY_TRAIN, train_base
from globalmin import augment, runfiles, train
from globalmin.models import init_model
from globalmin.runinfo import read_json


@pytest.fixture(scope="module")
def run(digits_file, tmp_path_factory):
    """One tiny base run with augmentation and an ablation tau."""
    out = tmp_path_factory.mktemp("base")
    return out, train_base(digits_file, out, 3, True, TINY_MODEL, TINY_TRAIN, 0.5, ablation=(0.25,))


def test_schedule_and_learning_rate():
    s = train.make_schedule(1297, 64, 30, 0.9)
    assert s.iters_per_epoch == 21 and s.total == 630 and s.tau == 567
    assert train.make_schedule(10, 64, 2, 0.999).tau == 1  # tau stays inside [1, T-1]
    cfg = {"lr": 0.1, "lr_gamma": 0.1}
    assert train.lr_at(20, s, cfg, [1]) == 0.1 and math.isclose(train.lr_at(21, s, cfg, [1]), 0.01)
    with pytest.raises(ValueError, match="at least 2 iterations"):
        train.make_schedule(10, 64, 1, 0.5)


def _replay(digits_file, seed: int, iterations: int, tau_fraction: float) -> torch.nn.Module:
    """base's first `iterations` steps, written out from the library's parts (not through base.run)."""
    data, schedule, milestones, device, speed = train.setup(digits_file, True, TINY_TRAIN, tau_fraction, data_seed=seed)
    model = init_model(TINY_MODEL, 1, 10, data.n_train, seed).to(memory_format=speed.memory_format)
    optimizer = train.make_optimizer(list(model.parameters()), TINY_TRAIN)
    batches = train.Batches(seed, data, TINY_TRAIN["batch_size"], schedule, augment.spec_for("digits"),
                            speed.memory_format)
    model.train()
    for it in range(iterations):
        x, y = batches(it)
        train.set_lr(optimizer, train.lr_at(it, schedule, TINY_TRAIN, milestones))
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize("name, fraction", [("tau_state.pt", 0.5), ("tau_state_0.25.pt", 0.25)])
def test_tau_states_are_exactly_base_after_tau_iterations(run, digits_file, name, fraction):
    out, metrics = run
    state = runfiles.load_tau_state(out / name)
    assert state["tau_fraction"] == fraction and state["iteration"] == round(fraction * metrics["schedule"]["epochs"]
                                                                            * metrics["schedule"]["iters_per_epoch"])
    replayed = _replay(digits_file, 3, state["iteration"], fraction)
    for key, value in replayed.state_dict().items():
        assert torch.equal(value, state["model"][key]), key
    final = torch.load(out / "model.pt", weights_only=True)["model"]
    assert not torch.equal(final["head.weight"], state["model"]["head.weight"])  # base kept training after tau


def test_every_tau_has_a_curve_row_and_outputs_describe_themselves(run):
    out, metrics = run
    rows = runfiles.load_tau_state(out / "tau_state.pt")
    curve = (out / "curve.csv").read_text().splitlines()
    iterations = [int(line.split(",")[2]) for line in curve[1:]]
    early = runfiles.load_tau_state(out / "tau_state_0.25.pt")
    assert rows["iteration"] in iterations and early["iteration"] in iterations
    stored = read_json(out / "metrics.json")
    assert stored["seed"] == 3 and stored["condition"] == STANDARD and stored["m_H"] == 1297
    assert {"torch", "torchvision", "device", "python"} <= set(stored["environment"])
    assert "wall_seconds" not in stored  # timings live in Snakemake's benchmark files, not in content
    init = read_json(out / "certificate_init.json")
    assert init["stage"] == "init" and init["n"] == 1297 and "seconds" not in init
    assert 0 < init["rank_float32"] <= init["rank"] <= 1297


def test_same_seed_gives_the_same_bytes_and_another_seed_differs(digits_file, tmp_path):
    args = (TINY_MODEL, TINY_TRAIN, 0.5)
    a = train_base(digits_file, tmp_path / "a", 7, False, *args)
    b = train_base(digits_file, tmp_path / "b", 7, False, *args)
    c = train_base(digits_file, tmp_path / "c", 8, False, *args)
    assert a["final"] == b["final"] and a["final"] != c["final"]
    for name in ("model.pt", "tau_state.pt", "curve.csv", "metrics.json", "certificate_init.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).stat().st_mode & 0o044 == 0o044, name  # group/others can read (umask 022)


def test_random_labels_condition_permutes_training_labels_only(digits_file, tmp_path):
    from globalmin import data

    prepared = data.load(digits_file)
    shuffled = data.with_condition(prepared, {"labels": "random", "label_seed": 0})
    assert torch.equal(shuffled.y_test, prepared.y_test) and torch.equal(shuffled.x_train, prepared.x_train)
    assert torch.equal(shuffled.y_train.sort().values, prepared.y_train.sort().values)  # a permutation
    assert (shuffled.y_train != prepared.y_train).float().mean() > 0.8
    again = data.with_condition(prepared, {"labels": "random", "label_seed": 0})
    assert torch.equal(again.y_train, shuffled.y_train)
    assert data.with_condition(prepared, {"labels": "dataset", "label_seed": None}) is prepared
    metrics = train_base(digits_file, tmp_path / "r", 0, False, TINY_MODEL, TINY_TRAIN, 0.5,
                         condition={"name": "random_labels", "labels": "random", "label_seed": 0})
    assert metrics["run_id"] == "digits/random_labels/noaug/seed0/base"


def test_non_finite_objective_stops_the_run_with_its_id():
    loop = train.Loop("digits/standard/noaug/seed0/base", "base", 0, train.make_schedule(1297, 64, 2, 0.5),
                      TINY_TRAIN, [1], lambda it, lr: torch.zeros(()), lambda: {"train_objective": float("nan"),
                                                                               "train_error": 0.0, "test_error": 0.0})
    with pytest.raises(train.DivergenceError, match=r"digits/standard/noaug/seed0/base.*iteration 42 \(epoch 2.00\)"
                                                    r".*lower train.lr"):
        loop.log_row(42, 1, 0.01)


def test_evaluation_schedule_keeps_every_tau_and_the_end(digits_file, tmp_path):
    cfg = {**TINY_TRAIN, "epochs": {"plain": 5, "augmented": 5}, "milestones": {"plain": [3], "augmented": [3]},
           "eval_every": 2}
    metrics = train_base(digits_file, tmp_path / "e", 0, False, TINY_MODEL, cfg, 0.5)
    ipe = metrics["schedule"]["iters_per_epoch"]
    iterations = [int(line.split(",")[2]) for line in (tmp_path / "e" / "curve.csv").read_text().splitlines()[1:]]
    assert iterations == sorted({0, 2 * ipe, 4 * ipe, metrics["schedule"]["tau"], 5 * ipe})


def test_truncated_tau_state_is_reported(run, tmp_path, digits_file):
    from conftest import train_recipe

    out, _ = run
    broken = tmp_path / "tau_state.pt"
    broken.write_bytes((out / "tau_state.pt").read_bytes()[:500])
    with pytest.raises(runfiles.CheckpointError, match="unreadable.*rerun the base run"):
        train_recipe(digits_file, broken, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_speed_settings_follow_the_config_and_the_device():
    cpu = torch.device("cpu")
    speed = train.speed_for({**TINY_TRAIN, "bf16": True, "channels_last": True, "compile": "none"}, cpu)
    assert not speed.bf16 and speed.channels_last  # bf16 is CUDA only; channels_last also helps oneDNN on CPU
    model = init_model(TINY_MODEL, 1, 10, 100, 0)
    assert speed.prepare(model) is model and model.stem.weight.is_contiguous(memory_format=torch.channels_last)
    plain = train.speed_for({**TINY_TRAIN, "channels_last": False}, cpu)
    assert plain.memory_format == torch.contiguous_format


def test_a_step_without_iterations_says_what_it_does_and_how_long_it_took(caplog):
    with caplog.at_level(logging.INFO, logger="globalmin.train"):
        with train.timed("digits/standard/noaug/seed0/recipe", "the exact optimum"):
            pass
    assert [r.getMessage() for r in caplog.records] == [
        "digits/standard/noaug/seed0/recipe the exact optimum ...",
        "digits/standard/noaug/seed0/recipe the exact optimum: done in 0.0 s"]
