"""base and A(base): branching at tau, freezing in phase 2, perturbation, determinism, divergence."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from globalmin import train
from globalmin.runinfo import read_json


@pytest.fixture(scope="module")
def runs(digits_file, tmp_path_factory):
    """One tiny base run with augmentation and the A(base) run branched from it."""
    from conftest import RECIPE, TINY_MODEL, TINY_TRAIN

    out = tmp_path_factory.mktemp("runs")
    base = train.train_base(digits_file, out / "base", 3, True, TINY_MODEL, TINY_TRAIN, RECIPE["tau_fraction"],
                            ablation_fractions=(0.25,))
    recipe = train.train_recipe(digits_file, out / "base" / "tau_state.pt", out / "recipe", RECIPE)
    return out, base, recipe


def test_schedule_and_learning_rate():
    s = train.make_schedule(1297, 64, 30, 0.9)
    assert s.iters_per_epoch == 21 and s.total == 630 and s.tau == 567
    assert train.make_schedule(10, 64, 2, 0.999).tau == 1  # tau stays inside [1, T-1]
    cfg = {"lr": 0.1, "lr_gamma": 0.1}
    assert train.lr_at(20, s, cfg, [1]) == 0.1 and math.isclose(train.lr_at(21, s, cfg, [1]), 0.01)
    with pytest.raises(ValueError, match="at least 2 iterations"):
        train.make_schedule(10, 64, 1, 0.5)


def test_phase1_is_exactly_the_first_tau_iterations_of_base(runs, digits_file, tiny):
    out, base, _ = runs
    state = train.load_tau_state(out / "base" / "tau_state.pt")
    data, schedule, milestones, device = train.setup(digits_file, True, tiny["train"], tiny["recipe"]["tau_fraction"])
    assert state["iteration"] == schedule.tau == base["schedule"]["tau"]
    model, optimizer = train.init_base(data, 3, tiny["model"], tiny["train"], device)
    ctx = train.RunContext("check", "base", 3, data, tiny["train"], schedule, milestones,
                           train.aug.spec_for("digits"), device)
    model.train()
    train.run_iterations(model, optimizer, ctx, 0, schedule.tau, phase=1)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state["model"][name]), name
    final = torch.load(out / "base" / "model.pt", weights_only=True)["model"]
    assert not torch.equal(final["head.weight"], state["model"]["head.weight"])  # base kept training after tau


def test_phase2_changes_only_the_head_and_keeps_bn_statistics(runs, digits_file, tiny):
    out, _, recipe = runs
    state = train.load_tau_state(out / "base" / "tau_state.pt")
    final = torch.load(out / "recipe" / "model.pt", weights_only=True)["model"]
    data, *_ = train.setup(digits_file, True, tiny["train"], 0.5)
    perturbed, _ = train.init_base(data, 3, tiny["model"], tiny["train"], torch.device("cpu"))
    perturbed.load_state_dict(state["model"])
    train.perturb(perturbed, "wide", tiny["recipe"]["noise_scale"], 3)
    expected = perturbed.state_dict()
    for name, value in final.items():
        if name.startswith("head."):
            assert not torch.equal(value, state["model"][name]), name
        else:  # body weights, batch-norm running statistics and counters, and the perturbed wide layer
            assert torch.equal(value, expected[name]), name
    assert recipe["phase2_parameters"] == ["head.weight", "head.bias"]
    assert not torch.equal(expected["wide.weight"], state["model"]["wide.weight"])


def test_ablation_tau_state_branches_from_the_same_base_run(runs, digits_file, tiny):
    out, base, _ = runs
    state = train.load_tau_state(out / "base" / "tau_state_0.25.pt")
    data, schedule, milestones, device = train.setup(digits_file, True, tiny["train"], 0.25)
    assert state["iteration"] == schedule.tau == round(0.25 * schedule.total) < base["schedule"]["tau"]
    model, optimizer = train.init_base(data, 3, tiny["model"], tiny["train"], device)
    ctx = train.RunContext("check", "base", 3, data, tiny["train"], schedule, milestones,
                           train.aug.spec_for("digits"), device)
    model.train()
    train.run_iterations(model, optimizer, ctx, 0, schedule.tau, phase=1)
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())
    ablated = train.train_recipe(digits_file, out / "base" / "tau_state_0.25.pt", out / "recipe_0.25", tiny["recipe"])
    assert ablated["run_id"].endswith("seed3/recipe_tau0.25") and ablated["tau_ablation"]
    assert ablated["schedule"]["tau"] == schedule.tau and ablated["tau_fraction"] == 0.25


def test_perturbation_is_reproducible_from_the_seed(tiny, digits_file):
    data, *_ = train.setup(digits_file, False, tiny["train"], 0.5)
    models = [train.init_base(data, 0, tiny["model"], tiny["train"], torch.device("cpu"))[0] for _ in range(4)]
    before = models[0].wide.weight.detach().clone()
    for model, seed in zip(models, (1, 1, 2)):
        train.perturb(model, "wide", 1e-3, seed)
    assert torch.equal(models[0].wide.weight, models[1].wide.weight)
    assert not torch.equal(models[0].wide.weight, models[2].wide.weight)
    delta = models[0].wide.weight - before
    assert 0.5e-3 < (delta.std() / before.std()).item() < 2e-3  # noise std is epsilon * std(W)
    assert train.perturb(models[3], "none", 1e-3, 1) == [] and torch.equal(models[3].wide.weight, before)


def test_outputs_are_self_describing(runs):
    out, base, recipe = runs
    stored = read_json(out / "recipe" / "metrics.json")
    assert stored["seed"] == 3 and stored["config"]["recipe"]["phase2_trains"] == "head"
    assert {"torch", "torchvision", "device", "python"} <= set(stored["environment"])
    assert stored["wall_seconds"] > 0 and stored["certificate"]["n"] == 1297 == stored["m_H"]
    curve = pd.read_csv(out / "recipe" / "curve.csv")
    assert curve.iteration.iloc[0] == base["schedule"]["tau"] and (curve.phase == 2).all()
    assert curve.iteration.iloc[-1] == base["schedule"]["epochs"] * base["schedule"]["iters_per_epoch"]
    init = read_json(out / "base" / "certificate_init.json")
    assert init["stage"] == "init" and init["n"] == 1297 and init["method"].startswith("exact SVD")
    cert = read_json(out / "recipe" / "certificate.json")
    assert cert["stage"] == "tau" and cert["rank"] <= cert["n"] and cert["perturbed"] == ["wide.weight", "wide.bias"]


def test_same_seed_same_metrics_different_seed_differs(digits_file, tmp_path, tiny):
    args = (tiny["model"], tiny["train"], 0.5)
    a = train.train_base(digits_file, tmp_path / "a", 7, False, *args)
    b = train.train_base(digits_file, tmp_path / "b", 7, False, *args)
    c = train.train_base(digits_file, tmp_path / "c", 8, False, *args)
    assert a["final"] == b["final"] and a["final"] != c["final"]
    assert (tmp_path / "a" / "curve.csv").read_text() == (tmp_path / "b" / "curve.csv").read_text()


def test_non_finite_objective_stops_the_run_with_its_id(digits_file, tiny):
    data, schedule, milestones, device = train.setup(digits_file, False, tiny["train"], 0.5)
    model, _ = train.init_base(data, 0, tiny["model"], tiny["train"], device)
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    ctx = train.RunContext("digits/noaug/seed0/base", "base", 0, data, tiny["train"], schedule, milestones, None, device)
    with pytest.raises(train.DivergenceError, match=r"digits/noaug/seed0/base.*iteration 42 \(epoch 2.00\).*lower train.lr"):
        ctx.log_row(model, 42, 1, 0.01)


def test_truncated_tau_state_is_reported(runs, tmp_path, digits_file):
    out, _, _ = runs
    broken = tmp_path / "tau_state.pt"
    broken.write_bytes((out / "base" / "tau_state.pt").read_bytes()[:500])
    with pytest.raises(train.CheckpointError, match="unreadable.*rerun the base run"):
        train.train_recipe(digits_file, broken, tmp_path / "r", {"noise_on": "wide", "noise_scale": 1e-3,
                                                                "phase2_trains": "head"})
    assert not (tmp_path / "r").exists()
