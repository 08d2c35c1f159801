"""The local-minimum study: the projection bound at exact critical points, its per-layer split, the baselines,
the collapse flag, training, the study and its verdicts (claims B1, B4, B5, checks B2, B3), the stage's files and
its figures."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from globalmin import local_minima as lm
from globalmin import local_minima_bound as bound
from globalmin import local_minima_claims as lmc
from globalmin import local_minima_data as lmdata
from globalmin import local_minima_net as net
from globalmin import local_minima_train as train
from globalmin import runinfo

TINY = {"data": ["teacher", "digits"], "n": 20, "d": 4, "d_out": 1, "classes": 2, "teacher_width": 8,
        "teacher_noise": 0.3, "data_seed": 0, "activations": ["tanh"],
        "depths": [1, 2], "widths": [2, 6], "seeds": [0, 1], "optimizer": "adam", "lr": 0.01, "steps": 60,
        "polish": "lm", "polish_iters": 30, "grad_tol": 1e-6, "rank_rtol": 1e-10, "contain_tol": 1e-6,
        "rf_draws": 2, "threads": 1, "loss_floor": 1e-6, "kink_tol": 1e-8, "alpha": 0.05, "min_slice_runs": 4,
        "b1_fraction": 0.5, "gap_tol": 1e-6, "contribution_tol": 1e-9, "ols_tol": 1e-6, "b4_fraction": 1.0}


def _problem(n: int = 30, d: int = 3, d_out: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=gen, dtype=torch.float64),
            torch.randn(n, d_out, generator=gen, dtype=torch.float64))


def _measure(model: net.Student, x: torch.Tensor, y: torch.Tensor) -> dict:
    return bound.measure(model, net.parameters(model), x, y, rank_rtol=1e-10, contain_tol=1e-6)


def dead_network(x: torch.Tensor, y: torch.Tensor, depth: int = 2) -> net.Student:
    """A ReLU net whose hidden units are all strictly inactive on every input, output bias = mean of y."""
    model = net.build_student(x.shape[1], 4, depth, y.shape[1], "relu", 0)
    with torch.no_grad():
        for layer in model.hidden:
            layer.weight.mul_(1e-3)
            layer.bias.fill_(-5.0)
        model.out.bias.copy_(y.mean(dim=0))
    return model


def test_bound_is_exact_at_a_dead_critical_point():
    x, y = _problem()
    model = dead_network(x, y)
    m = _measure(model, x, y)
    assert m["grad_norm"] == 0.0  # gates are 0 below, h = 0 above, and the bias residual sums to 0
    assert m["collapsed"] and m["rank_j"] == y.shape[1]  # only the output biases move the outputs
    centred = 0.5 * float(((y - y.mean(0)) ** 2).sum())
    assert m["loss"] == pytest.approx(centred, rel=1e-12)
    assert m["lower_bound"] == pytest.approx(m["loss"], rel=1e-10)


def test_bound_is_exact_at_a_live_critical_point():
    """W_out = 0, b_out = mean(y) and targets whose centred part is orthogonal to the hidden features: every
    gradient block vanishes exactly, with every tanh unit alive."""
    x, z = _problem(n=25, d=3, d_out=2, seed=1)
    model = net.build_student(3, 5, 2, 2, "tanh", 3)
    with torch.no_grad():
        features = torch.tanh(model.hidden[1](torch.tanh(model.hidden[0](x))))
        a = bound.with_ones(features)
        y = z - a @ torch.linalg.lstsq(a, z).solution + 0.7  # centred part orthogonal to [H, 1], mean 0.7
        model.out.weight.zero_()
        model.out.bias.copy_(y.mean(0))
    m = _measure(model, x, y)
    assert m["grad_norm"] < 1e-12 * m["loss"]
    assert not m["collapsed"] and m["rank_j"] == (5 + 1) * 2  # col(J) = col([H, 1] ⊗ I)
    assert m["lower_bound"] == pytest.approx(m["loss"], rel=1e-10)
    assert m["gap"] >= -1e-12 * m["loss"]


def test_bound_is_strict_at_a_generic_point_and_tight_after_polishing():
    x, y = lmdata.teacher_data(30, 3, 1, 8, 0.3, 0)
    model = net.build_student(3, 2, 1, 1, "tanh", 0)
    generic = _measure(model, x, y)
    assert generic["grad_norm"] > 1e-2 and generic["gap"] > 1e-3 * generic["loss"]
    # the identity check B2 reads: L − LB = ½‖P[J](f − y)‖² <= ‖∇L‖² / (2 σ_min(J)²)
    assert generic["gap"] <= generic["grad_norm"] ** 2 / (2 * generic["sigma_min_j"] ** 2)
    train.first_order(model, x, y, "adam", 0.05, 200)
    train.polish_lm(model, x, y, 200, 1e-10)
    polished = _measure(model, x, y)
    assert polished["grad_norm"] < 1e-6 and polished["loss"] > 0.1  # a certified minimum that does not interpolate
    assert abs(polished["gap"]) <= 1e-10 * polished["loss"]


@pytest.mark.parametrize("activation, depth, width", [("relu", 1, 3), ("relu", 3, 4), ("tanh", 2, 2)])
def test_bound_never_exceeds_the_loss_and_layers_add_non_negative_energy(activation, depth, width):
    x, y = _problem(n=20, d=4, d_out=2, seed=depth)
    for seed in range(3):
        model = net.build_student(4, width, depth, 2, activation, seed)
        params = net.parameters(model)
        m = bound.measure(model, params, x, y, 1e-10, 1e-6)
        assert m["loss"] >= m["lower_bound"] - 1e-12 * m["loss"]
        contributions = json.loads(m["layer_contributions"])
        assert len(contributions) == depth + 1
        assert sum(contributions) == pytest.approx(m["projection_energy"], rel=1e-10)
        assert min(contributions) >= -1e-10 * float((y ** 2).sum())
        j, blocks = net.jacobian(model, params, x)
        assert j.shape == (20 * 2, sum(p.numel() for p in model.parameters())) and blocks[-1][0] == "out"
        tol = bound.rank_tolerance(j, 1e-10)
        energy, _ = bound.projection_energy(j, y, tol)
        assert energy == pytest.approx(m["projection_energy"], rel=1e-12)
        output_only, _ = bound.projection_energy(j[:, blocks[-1][1]], y, tol)  # the order is output layer first
        assert contributions[0] == pytest.approx(output_only, rel=1e-10)


def test_jacobian_matches_finite_differences():
    x, _ = _problem(n=6, d=3, d_out=2)
    model = net.build_student(3, 3, 2, 2, "tanh", 0)
    params = net.parameters(model)
    j, _ = net.jacobian(model, params, x)
    flat = torch.nn.utils.parameters_to_vector(params.values())
    direction = torch.randn(flat.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = 1e-6

    def at(t: torch.Tensor) -> torch.Tensor:
        moved = dict(zip(params, torch.split(t, [p.numel() for p in params.values()])))
        return net.outputs(model, {k: v.reshape(params[k].shape) for k, v in moved.items()}, x)

    numeric = (at(flat + eps * direction) - at(flat - eps * direction)) / (2 * eps)
    assert torch.allclose(j @ direction, numeric, atol=1e-8)


def test_ols_and_random_feature_baselines_equal_numpy_lstsq():
    x, y = _problem(n=40, d=5, d_out=3, seed=2)
    a = np.hstack([x.numpy(), np.ones((40, 1))])
    residual = y.numpy() - a @ np.linalg.lstsq(a, y.numpy(), rcond=None)[0]
    assert bound.ols_loss(x, y) == pytest.approx(0.5 * (residual ** 2).sum(), rel=1e-10)
    features = bound.random_features(x, 7, "relu", runinfo.derive_seed(5, "lm-rf", 7, 0)).numpy()
    assert features.shape == (40, 8) and (features[:, :7] >= 0).all()
    residual = y.numpy() - features @ np.linalg.lstsq(features, y.numpy(), rcond=None)[0]
    assert bound.random_feature_loss(x, y, 7, "relu", 5, 1) == pytest.approx(0.5 * (residual ** 2).sum(), rel=1e-8)


def test_a_linear_relu_net_contains_the_linear_model_and_a_dead_one_does_not():
    x, y = _problem(n=30, d=3, d_out=1)
    model = net.build_student(3, 4, 1, 1, "relu", 0)
    with torch.no_grad():
        model.hidden[0].bias.fill_(20.0)  # every unit active on every input: f is affine in x
    live = _measure(model, x, y)
    assert live["contains_linear"] and live["linear_residual"] < 1e-10 and not live["collapsed"]
    # an affine net's minimum over its own Jacobian's span is OLS: LB <= OLS at any such point
    assert live["lower_bound"] <= bound.ols_loss(x, y) * (1 + 1e-10)
    dead = _measure(dead_network(x, y, depth=1), x, y)
    assert not dead["contains_linear"] and dead["linear_residual"] > 0.5
    assert dead["loss"] > bound.ols_loss(x, y)  # the known failure mode: a dead minimum worse than OLS


def test_collapse_flag_only_for_a_dead_network():
    x, y = _problem()
    assert _measure(dead_network(x, y), x, y)["collapsed"]
    for seed in range(3):
        m = _measure(net.build_student(3, 8, 2, 2, "relu", seed), x, y)
        assert not m["collapsed"] and m["dead_fraction_max"] < 1.0
    half = net.build_student(3, 8, 2, 2, "relu", 0)
    with torch.no_grad():
        half.hidden[0].weight[:4].zero_()
        half.hidden[0].bias[:4].fill_(-1.0)  # half the first layer dead: damaged, not collapsed
    m = _measure(half, x, y)
    assert m["dead_fraction_max"] >= 0.5 and not m["collapsed"]


def test_data_kinds_are_seeded_and_standardised(digits_file):
    prepared = {"digits": str(digits_file)}
    x, y = lmdata.make_data("teacher", TINY, prepared)
    x2, y2 = lmdata.make_data("teacher", TINY, prepared)
    assert torch.equal(x, x2) and torch.equal(y, y2) and x.shape == (20, 4) and y.shape == (20, 1)
    assert abs(float(y.mean())) < 1e-12 and abs(float(y.std()) - 1) < 1e-12
    x, y = lmdata.make_data("digits", TINY, prepared)
    assert x.shape == (20, 4) and y.shape == (20, 2) and torch.equal(y.sum(1), torch.ones(20, dtype=torch.float64))
    assert torch.allclose(x.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    with pytest.raises(runinfo.UserError, match="no prepared file of mnist was given"):
        lmdata.make_data("mnist", TINY, prepared)


def test_paper_data_sets_read_the_prepared_file(digits_file, tmp_path):
    """mnist, cifar10, svhn, ... come from the pipeline's prepared file; a prepared digits file stands in."""
    import shutil

    shutil.copy(digits_file, tmp_path / "svhn.pt")
    prepared = {"svhn": str(tmp_path / "svhn.pt")}
    x, y = lmdata.image_data("svhn", 30, 5, 3, 0, prepared)
    assert x.shape == (30, 5) and y.shape == (30, 3) and torch.equal(y.sum(1), torch.ones(30, dtype=torch.float64))
    assert torch.allclose(x.std(0), torch.ones(5, dtype=torch.float64))
    raw, _ = lmdata.image_data("svhn", 30, None, 3, 0, prepared)
    assert raw.shape == (30, 64)  # d: null keeps every pixel
    with pytest.raises(runinfo.UserError, match="fewer than n"):
        lmdata.image_data("svhn", 5000, 5, 3, 0, prepared)


def test_study_rows_and_claims(digits_file):
    prepared = {"digits": str(digits_file)}
    runs = lm.run_study(TINY, prepared)
    assert len(runs) == 2 * 1 * 2 * 2 * 2
    assert set(runs.data) == {"teacher", "digits"} and set(runs.d_out) == {1, 2}
    assert (runs.gap >= -1e-9 * runs.zero_loss).all()
    assert (runs.loss >= 0).all() and runs.certified.dtype == bool
    assert (runs.groupby("data").ols_loss.nunique() == 1).all()
    again = lm.run_study({**TINY, "data": ["teacher"], "widths": [2], "depths": [1]}, prepared)
    pd.testing.assert_frame_equal(again, runs[(runs.data == "teacher") & (runs.width == 2) & (runs.depth == 1)]
                                  .reset_index(drop=True))
    claims = lmc.judge(runs, TINY, ["runs.csv"])
    assert [c["id"] for c in claims] == ["B1", "B2", "B3", "B4", "B5"]
    assert [c["kind"] for c in claims] == ["claim", "check", "check", "claim", "claim"]
    assert json.dumps(claims, allow_nan=False)  # the claims fragment must be NaN-free
    # B2 and B3 are identities: they hold at every parameter value of real runs
    assert claims[1]["verdict"] == claims[2]["verdict"] == "passed"
    assert claims[1]["measured"]["run_ends"] == 2 * len(runs) and claims[1]["measured"]["ends_above_bound"] == 0


def _synthetic(loss_of, certified: bool = True) -> pd.DataFrame:
    rows = []
    for depth in (1, 2, 3):
        for width in (2, 4, 8, 16):
            for seed in range(3):
                rows.append({"data": "teacher", "activation": "tanh", "depth": depth, "width": width, "seed": seed,
                             "loss": loss_of(depth, width, seed), "zero_loss": 50.0, "certified": certified,
                             "collapsed": False, "gap": 0.0, "grad_norm": 1e-8,
                             "first_gap": 0.1, "first_grad_norm": 1.0, "n_params": depth * width * 10,
                             "sigma_min_j": 1.0, "first_sigma_min_j": 1.0,
                             "rank_j": depth * width * 5, "jac_rows": 1000, "dead_fraction_max": 0.0,
                             "min_layer_contribution": 0.0, "contains_linear": True,
                             "ols_loss": 5.0, "rf_loss": 10.0, "min_abs_preact": 0.1, "max_abs_param": 3.0})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("loss_of, verdict", [
    (lambda d, w, s: 10.0 / (d * w) + 0.01 * s, "supported"),
    (lambda d, w, s: 0.1 * d * w + 0.01 * s, "not supported"),
    (lambda d, w, s: 1.0 + 0.01 * ((d * 7 + w * 3 + s * 5) % 11), "inconclusive"),
])
def test_b1_verdict_follows_the_trend(loss_of, verdict):
    runs = _synthetic(loss_of)
    assert lmc.b1_claim(runs, TINY, [])["verdict"] == verdict
    assert lmc.b1_claim(_synthetic(loss_of, certified=False), TINY, [])["verdict"] == "inconclusive"


def test_each_verdict_of_b2_b3_b4_b5_follows_from_its_rule():
    runs = _synthetic(lambda d, w, s: 1.0 / (d * w))
    assert [c["verdict"] for c in lmc.judge(runs, TINY, [])][1:] == ["passed", "passed", "supported", "supported"]
    # check B2: the identity's bound, at either end of a run, certified or not
    assert lmc.b2_check(runs.assign(certified=False, first_gap=10.0), TINY, [])["verdict"] == "failed"
    assert lmc.b2_check(runs.assign(gap=-1e-3), TINY, [])["verdict"] == "failed"  # L below its lower bound
    # a certified run's gap beyond gap_tol fails even where a tiny sigma_min(J) leaves the bound loose
    loose = runs.assign(gap=1e-3 * runs.loss, sigma_min_j=1e-12)
    assert lmc.b2_check(loose, TINY, [])["verdict"] == "failed"
    assert lmc.b2_check(loose.assign(certified=False), TINY, [])["verdict"] == "passed"
    # an interpolating run (L at rounding level, LB = 0) is judged against the loss floor, not against L
    assert lmc.b2_check(runs.assign(loss=1e-14, gap=1e-14), TINY, [])["verdict"] == "passed"
    bad_layer = runs.assign(min_layer_contribution=-1.0)
    assert lmc.b3_check(bad_layer, TINY, [])["verdict"] == "failed"
    worse = runs.assign(loss=6.0)
    assert lmc.b4_claim(worse, TINY, [])["verdict"] == "not supported"
    assert lmc.b4_claim(runs.assign(contains_linear=False), TINY, [])["verdict"] == "inconclusive"
    # only nets whose J has full row rank qualify: L = LB = 0 there, so the comparison proves nothing
    assert lmc.b4_claim(runs.assign(rank_j=1000, loss=0.0), TINY, [])["verdict"] == "inconclusive"
    # a collapsed run is counted, never judged: a dead net above OLS does not refute B4
    dead = pd.concat([runs, runs.head(1).assign(collapsed=True, loss=50.0)], ignore_index=True)
    b4 = lmc.b4_claim(dead, TINY, [])
    assert b4["verdict"] == "supported" and b4["measured"]["collapsed_worse_than_ols"] == 1
    # claim B5: rank J against the parameter count
    assert lmc.b5_claim(runs.assign(rank_j=1000 - runs.rank_j), TINY, [])["verdict"] == "not supported"
    assert lmc.b5_claim(runs.assign(rank_j=96), TINY, [])["verdict"] == "inconclusive"  # capped: all tied
    assert lmc.b5_claim(runs[runs.depth * runs.width == 8], TINY, [])["verdict"] == "inconclusive"  # one size


def test_cli_writes_runs_claims_and_figures(tmp_path):
    from globalmin.cli import main

    cfg = {**TINY, "data": ["teacher"], "activations": ["relu", "tanh"], "widths": [2, 4], "depths": [1],
           "seeds": [0]}
    out = tmp_path / "study"
    assert main(["local-minima", "--config", json.dumps(cfg), "--out-dir", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 and {"loss", "lower_bound", "gap", "grad_norm", "rank_j", "collapsed"} <= set(runs)
    record = json.loads((out / "claims.json").read_text())
    assert record["stage"] == "local_minima"
    assert [c["id"] for c in record["records"]] == ["B1", "B2", "B3", "B4", "B5"]
    assert "NaN" not in (out / "summary.html").read_text()  # slices without a certified run show '–'
    figures = tmp_path / "figures"
    assert main(["figure-local-minima", "--inputs", f"runs={out / 'runs.csv'}", "--out-dir", str(figures)]) == 0
    for name in ("local_minima", "local_minima_gap"):
        assert (figures / f"{name}.png").stat().st_size > 10_000 and (figures / f"{name}.pdf").exists()


@pytest.mark.parametrize("activation, depth, width, d_out", [("tanh", 2, 6, 3), ("relu", 3, 16, 3),
                                                         ("tanh", 1, 2, 1), ("relu", 2, 4, 1)])
def test_jacobian_is_vmap_jacrev_laid_out_as_the_whole_batch_jacrev(activation, depth, width, d_out):
    from torch.func import functional_call, jacrev, vmap

    model = net.build_student(5, width, depth, d_out, activation, 0)
    params = net.parameters(model)
    x = torch.randn(11, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    j, blocks = net.jacobian(model, params, x)
    whole = jacrev(lambda p: net.outputs(model, p, x))(params)
    per_point = vmap(jacrev(lambda p, xi: functional_call(model, p, (xi[None],)).reshape(-1)), in_dims=(None, 0))(
        params, x)
    flat = {name: torch.cat([b.reshape(11 * d_out, -1) for b in reference.values()], 1)
            for name, reference in (("whole", whole), ("per_point", per_point))}
    # vmap(jacrev) of one point, laid out as the whole batch's jacrev: equal to it within float64 rounding (vmap
    # batches the matmuls differently, which on some CPUs rounds differently in the last bit)
    assert torch.equal(j, flat["per_point"])
    torch.testing.assert_close(j, flat["whole"], rtol=0, atol=8 * torch.finfo(torch.float64).eps)
    assert j.shape == (11 * d_out, sum(p.numel() for p in params.values()))
    assert [name for name, _ in blocks] == [f"hidden.{k}" for k in range(depth)] + ["out"]
    assert blocks[0][1].start == 0 and blocks[-1][1].stop == j.shape[1]
    assert all(a[1].stop == b[1].start for a, b in itertools.pairwise(blocks))
    assert blocks[-1][1].stop - blocks[-1][1].start == (width + 1) * d_out


@pytest.mark.parametrize("activation, depth, width, d_out", [("tanh", 1, 2, 1), ("relu", 2, 16, 3), ("tanh", 3, 4, 3)])
def test_gradient_norm_is_the_jacobian_transpose_times_the_residual(activation, depth, width, d_out):
    """torch.func's gradient (what each run records) against the written-out Jacobian: ∇L = Jᵀ (f − y)."""
    x = torch.randn(13, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.randn(13, d_out, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    model = net.build_student(5, width, depth, d_out, activation, 7)
    params = net.parameters(model)
    j, _ = net.jacobian(model, params, x)
    expected = float((j.T @ (net.outputs(model, params, x) - y.reshape(-1))).norm())
    assert expected > 0.1 and net.grad_norm(model, params, x, y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("activation, depth, d_out", [("tanh", 1, 1), ("relu", 2, 3)])
def test_first_order_phase_steps_gd_and_adam_on_the_squared_loss(activation, depth, d_out):
    """One step of each optimizer moves θ as its update rule says for g = Jᵀ (f − y), and Adam descends."""
    x = torch.randn(13, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.randn(13, d_out, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    start = net.build_student(5, 6, depth, d_out, activation, 3)
    theta = torch.nn.utils.parameters_to_vector(start.parameters()).detach()
    j, _ = net.jacobian(start, net.parameters(start), x)
    g = j.T @ (net.outputs(start, net.parameters(start), x) - y.reshape(-1))
    for optimizer, expected in (("gd", theta - 0.01 * g), ("adam", theta - 0.01 * g / (g.abs() + 1e-8))):
        model = net.build_student(5, 6, depth, d_out, activation, 3)
        train.first_order(model, x, y, optimizer, 0.01, 1)
        moved = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        # Adam's first step is lr · g / (|g| + eps): bias correction makes its moments g and g²
        torch.testing.assert_close(moved, expected, rtol=1e-12, atol=1e-15)
    model = net.build_student(5, 6, depth, d_out, activation, 3)
    before = float(net.loss(model, net.parameters(model), x, y))
    train.first_order(model, x, y, "adam", 0.01, 100)
    assert float(net.loss(model, net.parameters(model), x, y)) < 0.5 * before
