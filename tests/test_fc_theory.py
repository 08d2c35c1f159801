"""The fully-connected theory check: predictions, certificates of random nets, ball arithmetic, verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from globalmin import fc_theory

SMALL = {"n": 24, "inputs": ["gaussian", "duplicates"], "activations": ["tanh", "relu"], "narrow_widths": [16],
         "depths": [2], "wide_ratios": ["n-1", "2n"], "seeds": [0, 1], "near_duplicate_scale": 1e-3,
         "max_bits": 512}
DIGITS = np.random.default_rng(0).random((100, 64))  # stands in for the prepared digits' pixels


def test_inputs_have_the_requested_structure():
    assert fc_theory.make_inputs("digits", 30, 0, 1e-3, DIGITS).max() <= 1.0
    with pytest.raises(ValueError, match="prepared digits"):
        fc_theory.make_inputs("digits", 30, 0, 1e-3)
    dup = fc_theory.make_inputs("duplicates", 10, 0, 1e-3)
    assert np.array_equal(dup[-1], dup[0]) and len(np.unique(dup[:-1], axis=0)) == 9
    near = fc_theory.make_inputs("near_duplicates", 10, 0, 1e-3)
    assert 0 < np.abs(near[5:] - near[:5]).max() < 1e-2


def test_prediction_table():
    assert fc_theory.predicted_full_rank("tanh", "gaussian", 10, 10) is True
    assert fc_theory.predicted_full_rank("tanh", "gaussian", 9, 10) is False
    assert fc_theory.predicted_full_rank("softplus", "duplicates", 20, 10) is False
    assert fc_theory.predicted_full_rank("relu", "digits", 20, 10) is None


def test_grid_certifies_random_nets_and_negative_controls_fail():
    runs = fc_theory.run_grid(SMALL)
    assert len(runs) == 2 * 2 * 2 * 2
    analytic = runs[(runs.activation == "tanh") & (runs.inputs == "gaussian") & (runs.wide_ratio == "2n")]
    assert analytic.full_rank.all() and (analytic["rank"] == 24).all()
    controls = runs[runs.predicted_full_rank.eq(False)]
    assert len(controls) == 12 and not controls.full_rank.any()
    rates = fc_theory.pass_rates(runs)
    assert set(rates.predicted) == {"rank n", "rank < n", "outside theory"}


def test_ball_arithmetic_proves_rank_n_where_float64_cannot():
    x = fc_theory.make_inputs("gaussian", 64, 1, 1e-3)
    net = fc_theory.fc_network(16, [2] * 4, 64, "tanh", 1)  # width-2 layers: features far below float64's tolerance
    with torch.no_grad():
        features = net(torch.from_numpy(x)).numpy()
    sv = np.linalg.svd(features, compute_uv=False)
    assert sv[-1] / sv[0] < 64 * np.finfo(float).eps  # float64 cannot tell rank n here
    proof = fc_theory.rank_n_in_ball_arithmetic(x, net, "tanh", 2048)
    assert proof["proven_rank_n"] and proof["log10_abs_det_minor"] < -30
    twice = np.vstack([x[:32], x[:32]])  # duplicated rows: every minor is 0, no precision proves one nonzero
    assert not fc_theory.rank_n_in_ball_arithmetic(twice, net, "tanh", 256)["proven_rank_n"]


def test_minor_columns_skip_dependent_columns():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((4, 4))
    features = np.hstack([basis[:, :2], basis[:, :2] @ rng.standard_normal((2, 3)), basis[:, 2:]])  # 7 columns
    columns = fc_theory.minor_columns(features)  # columns 2-4 are combinations of columns 0 and 1
    assert len(columns) == 4 and abs(np.linalg.det(features[:, columns])) > 1e-3
    assert abs(np.linalg.det(features[:, :4])) < 1e-12  # the first four would be singular


def _claims(runs: pd.DataFrame) -> tuple[dict, dict]:
    f1, f2 = fc_theory.theory_claims(runs, ["runs.csv"])
    return f1, f2


def test_verdicts():
    runs = fc_theory.run_grid(SMALL)
    f1, f2 = _claims(runs)
    assert (f1["id"], f1["verdict"], f1["reconstructed"]) == ("F1", "supported", True)
    assert (f2["id"], f2["kind"], f2["verdict"]) == ("F2", "check", "passed")
    positive = runs.predicted_full_rank.eq(True)
    first = runs.index[positive][0]
    proven = runs.copy()
    proven.loc[first, ["full_rank", "proven_rank_n"]] = [False, True]  # decided in ball arithmetic
    assert _claims(proven)[0]["verdict"] == "supported"
    refuted = runs.copy()
    refuted.loc[first, ["full_rank", "proven_rank_n"]] = [False, False]  # still singular at max precision
    assert _claims(refuted)[0]["verdict"] == "not supported"
    undecided = runs.copy()
    undecided.loc[first, "full_rank"] = False  # not decided at all
    assert _claims(undecided)[0]["verdict"] == "inconclusive"
    assert _claims(runs[~positive])[0]["verdict"] == "inconclusive"  # no network to judge
    leaking = runs.copy()
    leaking.loc[leaking.predicted_full_rank.eq(False).idxmax(), "full_rank"] = True
    assert _claims(leaking)[1]["verdict"] == "failed"
