"""The fully-connected theory check: predictions, certificates of random nets, negative controls, verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from globalmin import fc_theory

SMALL = {"n": 24, "inputs": ["gaussian", "duplicates"], "activations": ["tanh", "relu"], "narrow_widths": [16],
         "depths": [2], "wide_ratios": ["n-1", "2n"], "seeds": [0, 1], "near_duplicate_scale": 1e-3}


def test_inputs_have_the_requested_structure():
    assert fc_theory.make_inputs("digits", 30, 0, 1e-3).max() <= 1.0
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
    assert (runs[runs.wide_ratio == "n-1"]["rank"] <= 23).all()
    rates = fc_theory.pass_rates(runs)
    assert set(rates.predicted) == {"rank n", "rank < n", "outside theory"}


def test_verdicts():
    runs = fc_theory.run_grid(SMALL)
    f1, f2 = fc_theory.theory_claims(runs, ["runs.csv"])
    assert (f1["id"], f1["verdict"], f2["verdict"]) == ("F1", "supported", "supported")
    failing = runs.copy()
    failing.loc[failing.predicted_full_rank.eq(True), "full_rank"] = [False] + [True] * (
        int(failing.predicted_full_rank.eq(True).sum()) - 1)
    assert fc_theory.theory_claims(failing, [])[0]["verdict"] == "inconclusive"
    leaking = runs.copy()
    leaking.loc[leaking.predicted_full_rank.eq(False).idxmax(), "full_rank"] = True
    assert fc_theory.theory_claims(leaking, [])[1]["verdict"] == "not supported"
    assert isinstance(pd.DataFrame(fc_theory.theory_claims(runs, [])), pd.DataFrame)
