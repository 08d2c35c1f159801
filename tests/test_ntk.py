"""The NTK study: the empirical NTK against its closed form, movement metrics, GD in the lazy regime, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from globalmin import ntk

SMALL = {"n": 8, "d": 6, "d_out": 1, "widths": [64, 128, 256], "depth": 1, "depths": [1], "depth_sweep_width": 64,
         "seeds": [0], "c": 1.0, "steps": 60, "slope_band": 0.25, "rate_tolerance": 0.25}


def _net(m: int, depth: int = 1, d_out: int = 1, seed: int = 0):
    params = ntk.init_network(6, m, depth, d_out, seed)
    return params, {"A": params.pop("A"), "B": params.pop("B")}


def test_inputs_are_on_the_sphere_with_a_constant_coordinate():
    x = ntk.sphere_inputs(10, 6, 0)
    assert torch.allclose(x.norm(dim=1), torch.ones(10, dtype=torch.float64))
    assert torch.allclose(x[:, -1], torch.full((10,), 1 / math.sqrt(2), dtype=torch.float64))


def test_init_follows_the_paper():
    params = ntk.init_network(6, 2000, 2, 3, 0)
    assert abs(params["W1"].var().item() - 2 / 2000) < 2e-5 and abs(params["B"].var().item() - 1 / 3) < 0.05


def test_torch_func_ntk_equals_the_closed_form():
    trained, fixed = _net(64)
    x = ntk.sphere_inputs(12, 6, 1)
    k = ntk.empirical_ntk(trained, fixed, x)
    assert torch.allclose(k, ntk.ntk_closed_form_one_layer(trained, fixed, x), rtol=1e-12, atol=1e-12)
    assert torch.linalg.eigvalsh(k)[0] > 0  # distinct inputs: positive definite


@pytest.mark.parametrize("depth, d_out", [(1, 1), (3, 2)])
def test_jacobian_rows_are_directional_derivatives_of_the_stacked_outputs(depth, d_out):
    """J v, row i·d_out + o, against central differences of f_o(x_i) along v (the columns of W_1, W_2, ...
    flattened row-major)."""
    trained, fixed = _net(64, depth, d_out)
    x = ntk.sphere_inputs(10, 6, 2)
    jac = ntk.jacobian(trained, fixed, x)
    assert jac.shape == (10 * d_out, depth * 64 * 64)
    gen = torch.Generator().manual_seed(0)
    v = {k: torch.randn(w.shape, generator=gen, dtype=torch.float64) for k, w in trained.items()}
    eps = 1e-6
    plus = ntk.forward({k: w + eps * v[k] for k, w in trained.items()}, fixed, x)
    minus = ntk.forward({k: w - eps * v[k] for k, w in trained.items()}, fixed, x)
    numeric = ((plus - minus) / (2 * eps)).reshape(-1)
    assert torch.allclose(jac @ torch.cat([t.flatten() for t in v.values()]), numeric, rtol=1e-6, atol=1e-8)


def _step(trained: dict, fixed: dict, x: torch.Tensor, out_grad: torch.Tensor, eta: float) -> dict:
    """W − eta ∇, with the gradient Jᵀ g of a loss whose gradient in the stacked outputs is g (n x d_out)."""
    flat = torch.cat([w.flatten() for w in trained.values()]) - eta * ntk.jacobian(trained, fixed, x).T @ \
        out_grad.reshape(-1)
    return {k: piece.view_as(w) for (k, w), piece in zip(trained.items(), flat.split([w.numel() for w in
                                                                                     trained.values()]))}


@pytest.mark.filterwarnings("ignore:One or more sample arguments is too small")  # one step: no curve to fit
@pytest.mark.parametrize("depth", [1, 3])
def test_gd_step_and_gradient_bound_follow_the_kernel(depth):
    """One step of train_gd against W − eta Jᵀ r, and ‖∇F‖² / F at the init against rᵀ K_0 r / F (∇F = Jᵀ r)."""
    trained, fixed = _net(96, depth)
    x = ntk.sphere_inputs(12, 6, 3)
    y = torch.randn(12, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    metrics, losses = ntk.train_gd(x, y, 96, depth, 0, 1.0, 1)
    r = ntk.forward(trained, fixed, x) - y
    k0 = ntk.empirical_ntk(trained, fixed, x)
    assert metrics["eta"] == pytest.approx(1.0 / float(torch.linalg.eigvalsh(k0)[-1]), rel=1e-12)
    assert losses[0] == pytest.approx(0.5 * float((r ** 2).sum()), rel=1e-12)
    assert metrics["pl_min"] == pytest.approx(float(r.flatten() @ k0 @ r.flatten()) / losses[0], rel=1e-10)
    stepped = _step(trained, fixed, x, r, metrics["eta"])
    assert losses[1] == pytest.approx(0.5 * float(((ntk.forward(stepped, fixed, x) - y) ** 2).sum()), rel=1e-10)
    assert losses[1] < losses[0]


def test_memorisation_steps_gd_on_the_mean_cross_entropy():
    """One step of memorise against W − lr Jᵀ g, g = (softmax − one-hot) / n the mean cross-entropy's gradient."""
    x, labels = ntk.digits_on_sphere(*_digits(), 40, 0)
    assert int(labels.max()) == 9  # memorise's classes: 10 outputs
    params = ntk.init_network(x.shape[1], 64, 2, 10, 0)
    fixed = {"A": params.pop("A"), "B": params.pop("B")}
    out = ntk.forward(params, fixed, x)
    g = (torch.softmax(out, 1) - torch.nn.functional.one_hot(labels, 10).double()) / len(labels)
    stepped = _step(params, fixed, x, g, 1.0)
    expected = float(torch.nn.functional.cross_entropy(ntk.forward(stepped, fixed, x), labels))
    result = ntk.memorise(x, labels, 64, 2, 0, 1.0, 1)
    assert result["steps_to_100"] is None and result["final_loss"] == pytest.approx(expected, rel=1e-10)


def test_movement_metrics_are_zero_for_an_untrained_net():
    trained, fixed = _net(32, depth=2)
    metrics = ntk.movement(trained, {k: v.clone() for k, v in trained.items()}, fixed, ntk.sphere_inputs(8, 6, 0))
    assert metrics["weight_movement"] == metrics["flip_fraction"] == metrics["kernel_change"] == 0.0


def test_gd_converges_linearly_and_moves_less_when_wider():
    x = ntk.sphere_inputs(8, 6, 0)
    y = torch.randn(8, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    narrow, _ = ntk.train_gd(x, y, 32, 1, 0, 1.0, 80)
    wide, losses = ntk.train_gd(x, y, 512, 1, 0, 1.0, 80)
    assert losses[-1] < 1e-2 * losses[0] and wide["log_loss_r2"] > 0.99
    assert wide["weight_movement"] < narrow["weight_movement"] and wide["kernel_change"] < narrow["kernel_change"]
    assert wide["pl_min"] >= 0.5 * wide["pl_bound"]


def test_study_claims_have_verdicts():
    runs, curves = ntk.run_study(SMALL)
    assert len(runs) == 3 and set(curves.m) == {64, 128, 256}
    claims = {c["id"]: c for c in ntk.ntk_claims(runs, SMALL, ["runs.csv"])}
    assert set(claims) == {"A1", "A2", "A3", "A4", "A5"}
    assert all(c["verdict"] in ("supported", "not supported") and c["reconstructed"] for c in claims.values())
    assert claims["A2"]["measured"]["slope"] < 0  # weights move less when wider, even at this tiny scale


@pytest.mark.parametrize("ratios, verdict", [((1.2, 1.0), "supported"), ((1.2, 0.8), "not supported")])
def test_a5_reads_the_unscaled_bound_at_the_widest_width(ratios, verdict):
    import pandas as pd

    runs = pd.DataFrame({"m": [64, 1024, 1024], "depth": 1, "pl_bound": 1.0,
                         "pl_min": [0.3, *ratios]})  # the narrow run below the bound does not decide
    a5 = ntk.gradient_bound_claim(runs, runs[runs.m == 1024], [])
    assert a5["verdict"] == verdict and a5["reconstructed"]
    assert a5["measured"]["min_ratio_by_m"][64] == 0.3 and a5["measured"]["runs_below_bound_all_widths"] >= 1


def _digits(n: int = 300):
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 64, generator=gen, dtype=torch.float64), torch.randint(0, 10, (n,), generator=gen)


def test_memorisation_fits_true_and_random_labels_and_the_claim_reads_the_widest():
    cfg = {"n": 40, "widths": [32, 128], "depth": 2, "lr": 1.0, "max_steps": 400, "seeds": [0]}
    runs = ntk.run_memorisation(cfg, *_digits())
    assert set(runs["labels"]) == {"true", "random"} and len(runs) == 4
    widest = runs[runs.m == 128]
    assert (widest.train_accuracy == 1.0).all() and widest.steps_to_100.notna().all()
    assert ntk.memorisation_claim(runs, cfg, [])["verdict"] == "supported"
    starved = ntk.run_memorisation({**cfg, "widths": [128], "max_steps": 1}, *_digits())
    assert (starved.train_accuracy < 1.0).all() and starved.steps_to_100.isna().all()
    assert ntk.memorisation_claim(starved, {**cfg, "max_steps": 1}, [])["verdict"] == "not supported"


def test_digits_on_the_sphere():
    x, labels = ntk.digits_on_sphere(*_digits(), 30, 0)
    assert torch.allclose(x.norm(dim=1), torch.ones(30, dtype=torch.float64)) and set(labels.tolist()) <= set(range(10))


def _synthetic_runs(rate_ratio: float = 1.0, r2: float = 0.999, weights: float = -0.5, kernel: float = -0.5,
                    flips=None):
    """A width sweep (depth 1, two seeds) whose measured quantities follow m^slope exactly; `flips` the flip
    fractions as a function of m and the seed (default m^(-0.4))."""
    import numpy as np
    import pandas as pd

    m = np.array([64, 128, 256, 512, 1024] * 2)
    seed = np.array([0] * 5 + [1] * 5)
    flip = (lambda m, s: m ** -0.4) if flips is None else flips
    return pd.DataFrame({"m": m, "depth": 1, "seed": seed, "predicted_log_rate": -0.1,
                         "measured_log_rate": -0.1 * rate_ratio, "log_loss_r2": r2,
                         "weight_movement": m ** weights, "kernel_change": m ** kernel,
                         "flip_fraction": flip(m, seed), "pl_min": 2.0, "pl_bound": 1.0})


@pytest.mark.parametrize("ratio, r2, verdict", [(1.05, 0.999, "supported"), (0.5, 0.999, "not supported"),
                                                (1.0, 0.9, "not supported")])
def test_a1_verdicts(ratio, r2, verdict):
    a1 = next(c for c in ntk.ntk_claims(_synthetic_runs(ratio, r2), {**SMALL, "depth": 1}, []) if c["id"] == "A1")
    assert a1["verdict"] == verdict


@pytest.mark.parametrize("claim, column", [("A2", "weights"), ("A4", "kernel")])
@pytest.mark.parametrize("slope, verdict, relation", [(-0.9, "supported", "faster than predicted"),
                                                      (-0.4, "supported", "as predicted"),
                                                      (-0.1, "not supported", "slower than predicted")])
def test_a2_a4_bound_verdicts_accept_faster_shrinking(claim, column, slope, verdict, relation):
    """A2 (weights) and A4 (kernel): the fitted log-log slope against m decides, each verdict from runs that follow
    m^slope; the other quantity stays at the prediction."""
    runs = _synthetic_runs(**{column: slope})
    found = {c["id"]: c for c in ntk.ntk_claims(runs, {**SMALL, "depth": 1}, [])}
    assert found[claim]["verdict"] == verdict and found[claim]["measured"]["relation"] == relation
    assert found[claim]["measured"]["slope"] == pytest.approx(slope, abs=1e-9)
    other = {"A2": "A4", "A4": "A2"}[claim]
    assert found[other]["verdict"] == "supported" and found[other]["measured"]["relation"] == "as predicted"


NOISE = {0: [1.2, 0.8, 1.1, 0.9, 1.0], 1: [0.9, 1.1, 1.0, 1.2, 0.8]}  # per seed, along m: no trend


@pytest.mark.parametrize("flips, verdict", [
    (lambda m, s: m ** -0.4, "supported"),
    (lambda m, s: 0.1 * m ** -0.3 * np.array([NOISE[k][i % 5] for i, k in enumerate(s)]), "supported"),
    (lambda m, s: 0.1 * np.array([NOISE[k][i % 5] for i, k in enumerate(s)]), "not supported"),  # CI holds 0
    (lambda m, s: 0.01 * m ** 0.2, "not supported"),
])
def test_a3_verdicts(flips, verdict):
    """A3: the 95% confidence interval of the flip fraction's log-log slope against m must lie below 0."""
    a3 = next(c for c in ntk.ntk_claims(_synthetic_runs(flips=flips), {**SMALL, "depth": 1}, []) if c["id"] == "A3")
    assert a3["verdict"] == verdict
