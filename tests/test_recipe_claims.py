"""The Recipe's claims (R1-R3, R5, R6) and checks (C1-C4): inputs that produce every verdict each rule names."""

from __future__ import annotations

import pandas as pd
import pytest

from globalmin import recipe_claims
from globalmin.runs_table import sweep_runs

CFG = {"claims": {"equivalence_margin_pp": 0.5, "alpha": 0.05, "gap_fraction": 0.1, "gap_floor": 1e-6}}
BASE_ERRORS = [1.0, 2.0, 3.0, 1.5, 2.5]


def _runs(base: list[float], recipe: list[float], full_rank: bool = True, gaps: tuple | None = None,
          condition: str = "standard", m_h: int = 100, infimum: str | None = "zero", labels: str = "dataset",
          loss: str = "cross_entropy", optimizer: str = "sgd", tau: float = 0.9, changed: int = 3,
          optimum_error: float | None = None) -> pd.DataFrame:
    """Runs rows as runs_table.run_row writes them (the columns the rules read); gaps: (at tau, at T, horizon)."""
    rows = []
    for alg, errors in (("base", base), ("recipe", recipe)):
        if alg == "base" and tau != 0.9:
            continue
        for seed, err in enumerate(errors):
            solved = gaps is not None and alg == "recipe"
            rows.append({"dataset": "digits", "condition": condition, "labels": labels, "loss": loss,
                         "base": optimizer, "augment": False, "seed": seed, "algorithm": alg, "test_error": err,
                         "tau_ablation": tau != 0.9, "tau_fraction": tau, "n_train": 100, "m_H": m_h,
                         "n_test": 500, "test_predictions_changed": changed if alg == "recipe" else None,
                         "cert_full_rank": full_rank if alg == "recipe" else None,
                         "cert_unperturbed_full_rank": full_rank, "cert_unperturbed_sigma_min": 1e-5,
                         "cert_full_rank_float32": False, "cert_rank_float32": 40,
                         "cert_sigma_min": 1e-5 if full_rank else 0.0, "cert_tolerance": 1e-10,
                         "p2_gap_at_tau": gaps[0] if solved else None, "p2_gap_final": gaps[1] if solved else None,
                         "h_gap_at_horizon": gaps[2] if solved else None, "h_rate_per_epoch": 0.99 if solved else None,
                         "h_epochs": 100 if solved else None, "h_lr": 1e-3 if solved else None,
                         "p2_infimum_kind": infimum if alg == "recipe" else None,
                         "p2_optimum_train_error": optimum_error if alg == "recipe" else None,
                         "p2_optimum_converged": True if solved else None,
                         "p2_optimum_error_bound": 1e-10 if solved else None})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("recipe_errors, verdict", [
    ([1.0, 2.0, 3.0, 1.5, 2.5], "supported"),
    ([3.5, 4.5, 5.5, 4.0, 5.0], "not supported"),
    ([1.2, 3.4, 2.0, 2.9, 2.1], "inconclusive"),
])
def test_r1_verdicts(recipe_errors, verdict):
    r1 = recipe_claims.comparable("R1", _runs(BASE_ERRORS, recipe_errors), ["sgd"], 0.5, 0.05, [], "s")
    assert r1["id"] == "R1" and r1["verdict"] == verdict and not r1["reconstructed"]
    [group] = r1["measured"]["groups"]
    assert group["seeds"] == 5 and group["tau_fraction"] == 0.9 and group["test_predictions_changed_mean"] == 3


def test_r1_is_judged_at_every_tau_and_one_tau_beyond_the_margin_decides_the_headline():
    at_main = _runs(BASE_ERRORS, BASE_ERRORS)  # supported at tau = 0.9, and phase 2 changed nothing there
    early = _runs(BASE_ERRORS, [e + 3 for e in BASE_ERRORS], tau=0.1)
    r1 = recipe_claims.comparable("R1", pd.concat([at_main.assign(test_predictions_changed=0), early]), ["sgd"],
                                  0.5, 0.05, [], "s")
    verdicts = {g["tau_fraction"]: g["verdict"] for g in r1["measured"]["groups"]}
    assert verdicts == {0.1: "not supported", 0.9: "supported"} and r1["verdict"] == "not supported"
    assert {g["tau_fraction"]: g["test_predictions_changed_max"] for g in r1["measured"]["groups"]} == {0.1: 3, 0.9: 0}
    assert "every tau" in r1["rule"]


def test_r5_judges_the_other_bases_and_is_inconclusive_without_them():
    sgd = _runs(BASE_ERRORS, BASE_ERRORS)
    adam = _runs(BASE_ERRORS, [e + 3 for e in BASE_ERRORS], condition="adam", optimizer="adam")
    claims = {c["id"]: c for c in recipe_claims.judge(pd.concat([sgd, adam]), CFG, [], sweep_runs(sgd, []))}
    assert claims["R1"]["verdict"] == "supported" and claims["R5"]["verdict"] == "not supported"
    assert {g["base"] for g in claims["R5"]["measured"]["groups"]} == {"adam"} and "adam" in claims["R5"]["statement"]
    alone = {c["id"]: c for c in recipe_claims.judge(sgd, CFG, [], sweep_runs(sgd, []))}
    assert alone["R5"]["verdict"] == "inconclusive"


def test_r2_verdicts():
    assert recipe_claims.r2_expressivity(_runs([1, 2], [1, 2]), [])["verdict"] == "supported"
    assert recipe_claims.r2_expressivity(_runs([1, 2], [1, 2], full_rank=False), [])["verdict"] == "not supported"
    controls_only = _runs([1, 2], [1, 2], condition="random_labels", labels="random")
    assert recipe_claims.r2_expressivity(controls_only, [])["verdict"] == "inconclusive"  # no Table 1 run


@pytest.mark.parametrize("gaps, rate, verdict", [
    ((1.0, 0.5, 0.05), 0.99, "supported"),       # not converged by T, converged on the horizon
    ((1.0, 0.9, 0.5), 0.99, "inconclusive"),     # still falling at its fitted rate: not yet
    ((1.0, 0.5, 0.6), 0.99, "not supported"),    # the horizon did not lower it: stalled
    ((1.0, 0.5, 0.4), 1.001, "not supported"),   # rising at the horizon's end: stalled
    ((1e-8, 1e-9, 1e-9), 0.99, "inconclusive"),  # nothing to converge
    (None, None, "inconclusive"),
])
def test_r3_is_judged_on_the_horizon_not_at_t(gaps, rate, verdict):
    runs = _runs([1, 2], [1, 2], gaps=gaps)
    runs.loc[runs.algorithm == "recipe", "h_rate_per_epoch"] = rate
    r3 = recipe_claims.r3_convergence(runs, 0.1, 1e-6, [])
    assert r3["verdict"] == verdict and r3["reconstructed"]
    if verdict == "supported":
        assert r3["measured"]["runs_reached_by_T"] == 0 and r3["measured"]["runs_reached"] == 2


def _sweep(points: list[tuple[int, bool, float, str]]) -> pd.DataFrame:
    """Width-sweep runs: (m_H, certified, the optimum's train error, infimum kind) under the squared loss."""
    frames, spec = [], []
    for m_h, certified, error, kind in points:
        name = f"sweep_sgd_sq_{m_h}"
        frames.append(_runs([50.0], [50.0], full_rank=certified, condition=name, m_h=m_h, labels="random",
                            loss="squared", optimum_error=error, infimum=kind))
        spec.append({"base": "standard", "loss": "squared", "ratio": f"{m_h}", "seeds": [0], "condition": name})
    runs = pd.concat(frames, ignore_index=True)
    return sweep_runs(runs, spec)


@pytest.mark.parametrize("points, verdict", [
    ([(50, False, 20.0, "positive"), (100, True, 0.0, "zero")], "supported"),
    ([(50, False, 20.0, "positive"), (100, True, 3.0, "zero")], "not supported"),   # certified, yet not fit
    ([(50, False, 0.0, "positive"), (100, True, 0.0, "zero")], "not supported"),    # uncertified, yet fit
    ([(100, True, 0.0, "zero"), (150, True, 0.0, "zero")], "inconclusive"),         # every width certified
    ([], "inconclusive"),
])
def test_r6_verdicts(points, verdict):
    sweep = _sweep(points) if points else sweep_runs(_runs([1], [1]), [])
    assert recipe_claims.r6_sweep(sweep, [])["verdict"] == verdict


def test_condition_checks_pass_and_fail():
    good = pd.concat([_runs([1, 2], [1, 2], gaps=(1.0, 0.1, 0.01)),
                      _runs([90, 90], [90, 90], full_rank=False, condition="narrow", m_h=32, labels="random",
                            infimum="positive", gaps=(1.0, 0.1, 0.01))])
    sweep = _sweep([(50, False, 20.0, "positive"), (100, True, 0.0, "zero")])
    c1, c2, c3, c4 = recipe_claims.condition_checks(good, sweep, [])
    assert [c["verdict"] for c in (c1, c2, c3, c4)] == ["passed"] * 4
    leaky = good.copy()
    leaky.loc[(leaky.m_H == 32) & (leaky.algorithm == "recipe"), "cert_full_rank"] = True  # a control certified
    leaky.loc[(leaky.m_H == 100) & (leaky.algorithm == "recipe"), "p2_infimum_kind"] = "undecided"
    leaky.loc[leaky.algorithm == "recipe", "p2_optimum_converged"] = False
    disagree = _sweep([(50, False, 20.0, "zero"), (100, True, 0.0, "zero")])  # infimum 0 without the certificate
    c1, c2, c3, c4 = recipe_claims.condition_checks(leaky, disagree, [])
    assert [c["verdict"] for c in (c1, c2, c3, c4)] == ["failed"] * 4
