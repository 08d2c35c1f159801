"""A(base): phase 2 on cached features, freezing, perturbation, the certificate at tau and the gap to the optimum."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import RECIPE, TINY_MODEL, TINY_TRAIN, train_base, train_recipe

from globalmin import api, recipe, runfiles, train
from globalmin.api import Recipe
from globalmin.models import build_model
from globalmin.runinfo import read_json

# a body wide enough that the features at tau certify rank n (a width-4 body's have rank about 170 of 1,297)
MODEL = {**TINY_MODEL, "widths": [32]}


@pytest.fixture(scope="module")
def runs(digits_file, tmp_path_factory):
    """A tiny base run without augmentation and the A(base) runs branched from its two tau-states."""
    out = tmp_path_factory.mktemp("recipe")
    base = train_base(digits_file, out / "base", 3, False, MODEL, TINY_TRAIN, 0.5, ablation=(0.25,))
    main = train_recipe(digits_file, out / "base" / "tau_state.pt", out / "recipe")
    early = train_recipe(digits_file, out / "base" / "tau_state_0.25.pt", out / "recipe_0.25")
    return out, base, main, early


def _switched(digits_file, state):
    """The tau-state's network and base's optimizer after the switch (api.Recipe.transition), as A(base) has them."""
    data, *_ = train.setup(digits_file, False, TINY_TRAIN, 0.5, data_seed=state["data_seed"])
    model = build_model(MODEL, 1, 10, data.n_train)
    model.load_state_dict(state["model"])
    model.eval()
    optimizer = train.make_optimizer(model.parameters(), TINY_TRAIN)
    # a copy: torch.optim keeps the tensors it is given (a float32 state on the CPU is not cast), and SGD updates
    # its momentum buffers in place, which would change the tau-state for the next caller
    optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
    Recipe(model, optimizer, 0, data.x_train, noise_scale=RECIPE["noise_scale"], seed=3).transition()
    return model, data, optimizer


def test_phase2_changes_only_the_head_and_keeps_bn_statistics(runs, digits_file):
    out, _, main, _ = runs
    state = runfiles.load_tau_state(out / "base" / "tau_state.pt")
    final = torch.load(out / "recipe" / "model.pt", weights_only=True)["model"]
    expected = _switched(digits_file, state)[0].state_dict()
    for name, value in final.items():
        if name.startswith("head."):
            assert not torch.equal(value, state["model"][name]), name
        else:  # body weights, batch-norm running statistics and counters, and the perturbed wide layer
            assert torch.equal(value, expected[name]), name
    assert main["phase2_parameters"] == ["head.weight", "head.bias"]
    assert not torch.equal(expected["wide.weight"], state["model"]["wide.weight"])


def test_cached_features_give_the_same_phase2_as_the_full_forward(runs, digits_file):
    """The head trained on features computed once equals the head trained through the frozen network.

    Not bit-identical on CPU: the cached features come from batches of eval_batch_size, a step's from its own
    batch of 64, and oneDNN's convolution kernels sum in a batch-size-dependent order, so features differ in
    the last float32 bits (measured below); over a short phase 2 the heads then agree to 1e-6 relative."""
    out, *_ = runs
    state = runfiles.load_tau_state(out / "base" / "tau_state.pt")
    heads = []
    for cached in (True, False):
        model, data, optimizer = _switched(digits_file, state)
        schedule = train.make_schedule(data.n_train, 64, 2, 0.5)
        batches = train.Batches(3, data, 64, schedule)
        features = recipe.cached(model, data.x_train, 2048) if cached else None
        step = recipe.phase2_step(model, optimizer, batches, head_only=not cached, train_features=features,
                                  speed=train.Speed())
        for it in range(schedule.tau, schedule.total):
            step(it, train.lr_at(it, schedule, TINY_TRAIN, [1]))
        heads.append(torch.cat([model.head.weight.detach().flatten(), model.head.bias.detach()]))
        if cached:
            direct = model.features(data.x_train[:64])
            assert torch.allclose(features[:64], direct, rtol=1e-5, atol=1e-6)
            # in batches of 500, the last short: each batch written in place, as concatenating them gives
            with torch.no_grad():
                batched = torch.cat([model.features(data.x_train[i:i + 500]) for i in range(0, data.n_train, 500)])
            assert torch.equal(recipe.cached(model, data.x_train, 500), batched)
    assert torch.allclose(heads[0], heads[1], rtol=1e-6, atol=1e-7)


def test_ablation_branches_from_the_same_base_run(runs):
    out, base, main, early = runs
    assert early["run_id"] == "digits/standard/noaug/seed3/recipe_0.25" and early["tau_ablation"]
    assert early["schedule"]["tau"] < main["schedule"]["tau"] == base["schedule"]["tau"]
    curve = pd.read_csv(out / "recipe_0.25" / "curve.csv")
    assert curve.iteration.iloc[0] == early["schedule"]["tau"] and (curve.phase == 2).all()


def test_perturbation_is_reproducible_from_the_seed(digits_file):
    data, *_ = train.setup(digits_file, False, TINY_TRAIN, 0.5)
    models = [build_model(TINY_MODEL, 1, 10, data.n_train) for _ in range(4)]
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
    before = models[0].wide.weight.detach().clone()
    for model, seed in zip(models, (1, 1, 2)):
        api.perturb(model, ["wide.weight", "wide.bias"], 1e-3, seed)
    assert torch.equal(models[0].wide.weight, models[1].wide.weight)
    assert not torch.equal(models[0].wide.weight, models[2].wide.weight)
    delta = models[0].wide.weight - before
    assert 0.5e-3 < (delta.std() / before.std()).item() < 2e-3  # noise std is epsilon * std(W)
    assert api.perturb(models[3], [], 1e-3, 1) == [] and torch.equal(models[3].wide.weight, before)


def test_certificate_and_gap_to_the_optimum_are_recorded(runs):
    out, _, main, _ = runs
    cert = read_json(out / "recipe" / "certificate.json")
    assert cert["stage"] == "tau" and cert["n"] == 1297 and cert["perturbed"] == ["wide.weight", "wide.bias"]
    # the unperturbed features' certificate beside it: the perturbation moved sigma_min, not by much
    assert cert["unperturbed"]["sigma_min"] != cert["sigma_min"]
    assert cert["unperturbed"]["sigma_min"] == pytest.approx(cert["sigma_min"], rel=0.5)
    assert cert["rank_float32"] <= cert["rank"] and "seconds" not in cert
    problem = main["phase2_problem"]
    assert problem["computed"] and problem["optimum_converged"] and problem["optimum_error_bound"] <= 1e-8
    curve = pd.read_csv(out / "recipe" / "curve.csv")
    assert (curve.gap >= -1e-9).all()  # L* is the minimum: no head is below it (up to the solver's bound)
    assert curve.gap.iloc[0] == pytest.approx(problem["gap_at_tau"]) and curve.gap.iloc[-1] == problem["gap_final"]
    assert cert["full_rank"] and problem["unregularised"]["kind"] == "zero"  # rank n: the infimum 0 is reached
    assert np.isclose(curve.objective64 - curve.gap, problem["optimum_objective"]).all()


def test_augmented_runs_cache_only_evaluation_features(digits_file, tmp_path):
    train_base(digits_file, tmp_path / "base", 1, True, TINY_MODEL, TINY_TRAIN, 0.5)
    metrics = train_recipe(digits_file, tmp_path / "base" / "tau_state.pt", tmp_path / "recipe")
    assert metrics["phase2_problem"] == {"computed": False,
                                         "why": "augmented: phase 2 minimises the augmented loss, not this problem"}
    assert np.isfinite(metrics["final"]["train_objective"])


def test_a_rank_deficient_control_fails_its_certificate(digits_file, tmp_path):
    narrow = {**TINY_MODEL, "wide_width": 16, "require_expressivity": False}
    train_base(digits_file, tmp_path / "base", 0, False, narrow, TINY_TRAIN, 0.5,
               condition={"name": "narrow_width", "labels": "random", "label_seed": 0})
    metrics = train_recipe(digits_file, tmp_path / "base" / "tau_state.pt", tmp_path / "recipe")
    assert metrics["m_H"] == 16 and not metrics["certificate"]["full_rank"]
    assert metrics["phase2_problem"]["unregularised"]["kind"] in ("positive", "undecided")
    assert metrics["phase2_problem"]["unregularised"]["train_error"] > 50  # 17 features cannot fit random labels


def test_same_tau_state_gives_the_same_bytes(runs, digits_file, tmp_path):
    out, *_ = runs
    train_recipe(digits_file, out / "base" / "tau_state.pt", tmp_path / "again")
    for name in ("model.pt", "curve.csv", "metrics.json", "certificate.json"):
        assert (tmp_path / "again" / name).read_bytes() == (out / "recipe" / name).read_bytes(), name


def test_the_gpu_bf16_path_runs_here_and_leaves_states_float32_and_the_certificate_float64(runs, digits_file,
                                                                                        tmp_path, monkeypatch):
    """config/paper.yaml's bf16 is a CUDA setting (speed_for turns it off elsewhere); forced on here, the same code
    runs under CPU autocast: a check of the GPU path's code (not its speed) on a machine without a GPU."""
    out, base_fp32, main, _ = runs
    monkeypatch.setattr(train, "speed_for", lambda train_cfg, device: train.Speed(bf16=True, channels_last=True))
    base_bf16 = train_base(digits_file, tmp_path / "base", 3, False, MODEL, TINY_TRAIN, 0.5)
    state = runfiles.load_tau_state(tmp_path / "base" / "tau_state.pt")
    assert {v.dtype for v in state["model"].values() if v.is_floating_point()} == {torch.float32}
    # autocast was on: bf16's 8-bit mantissa moved the run, but not far (two epochs of a tiny net)
    assert base_bf16["final"]["train_objective"] != base_fp32["final"]["train_objective"]
    assert base_bf16["final"]["train_objective"] == pytest.approx(base_fp32["final"]["train_objective"], rel=0.1)
    # A(base) from the float32 run's tau-state: phase 2 in bf16, the certificate and the optimum in float64
    bf16 = train_recipe(digits_file, out / "base" / "tau_state.pt", tmp_path / "recipe")
    assert bf16["certificate"] == main["certificate"]
    # the solver starts from the final head, which bf16 moved: the two optima agree within their error bounds
    optima = [run["phase2_problem"] for run in (bf16, main)]
    assert abs(optima[0]["optimum_objective"] - optima[1]["optimum_objective"]) <= sum(
        o["optimum_error_bound"] for o in optima)
    assert optima[0]["start_objective"] == optima[1]["start_objective"]  # the perturbed head at tau, in float64
    assert bf16["final"]["train_objective"] != main["final"]["train_objective"]
    assert read_json(tmp_path / "recipe" / "certificate.json") == read_json(out / "recipe" / "certificate.json")


def test_a_tau_state_another_run_wrote_is_refused_naming_both(runs, digits_file, tmp_path):
    out, base, *_ = runs
    state = out / "base" / "tau_state.pt"
    for expect in ({"run_id": "digits/standard/noaug/seed1/base", "config_hash": base["config_hash"]},
                   {"run_id": base["run_id"], "config_hash": "0" * 64}):
        with pytest.raises(runfiles.CheckpointError, match=f"tau-state {state} belongs to run {base['run_id']} "
                                                           f".*not to {expect['run_id']}"):
            recipe.run({**RECIPE, "expect": expect}, {"data": digits_file, "tau_states": [state]},
                       {"run_dirs": [tmp_path / "r"]})
    assert not (tmp_path / "r").exists()  # refused before any work


def test_aggregate_names_a_copied_or_duplicated_metrics_file(runs, tmp_path):
    import shutil

    from globalmin.runs_table import collect_runs
    from globalmin.runinfo import UserError

    out, base, main, _ = runs
    folders = {}
    for seed in (3, 1):  # seed 1's folder holds seed 3's files: copied from another run
        folder = tmp_path / "results" / "runs" / "digits" / "standard" / "noaug" / f"seed{seed}" / "recipe"
        shutil.copytree(out / "recipe", folder)
        folders[seed] = folder
    collect_runs([folders[3] / "metrics.json"])  # in its own folder: accepted
    with pytest.raises(UserError, match=r"seed1/recipe/metrics.json holds run digits/standard/noaug/seed3/recipe, not "
                                        r"digits/standard/noaug/seed1/recipe"):
        collect_runs([folders[3] / "metrics.json", folders[1] / "metrics.json"])
    with pytest.raises(UserError, match="run digits/standard/noaug/seed3/recipe appears twice: .* and .*"):
        collect_runs([folders[3] / "metrics.json", out / "recipe" / "metrics.json"])
