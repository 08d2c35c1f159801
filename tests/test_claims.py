"""The claims ledger and the Recipe's claims: every verdict each rule names is produced by some input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from globalmin import claims, recipe_claims

CFG = {"equivalence_margin_pp": 0.5, "alpha": 0.05, "gap_fraction": 0.1, "gap_floor": 1e-6}


def _runs(base: list[float], recipe: list[float], full_rank: bool = True, gaps: tuple | None = None,
          condition: str = "standard", m_h: int = 100, infimum: str | None = "zero") -> pd.DataFrame:
    rows = []
    for alg, errors in (("base", base), ("recipe", recipe)):
        for seed, err in enumerate(errors):
            rows.append({"dataset": "digits", "condition": condition, "augment": False, "seed": seed,
                         "algorithm": alg, "test_error": err, "tau_ablation": False, "tau_fraction": 0.9,
                         "n_train": 100, "m_H": m_h,
                         "cert_full_rank": full_rank if alg == "recipe" else None,
                         "cert_full_rank_float32": False, "cert_rank_float32": 40,
                         "cert_sigma_min": 1e-5 if full_rank else 0.0, "cert_tolerance": 1e-10,
                         "p2_gap_at_tau": gaps[0] if gaps and alg == "recipe" else None,
                         "p2_gap_final": gaps[1] if gaps and alg == "recipe" else None,
                         "p2_infimum_kind": infimum if alg == "recipe" else None,
                         "p2_optimum_converged": True if gaps and alg == "recipe" else None,
                         "p2_optimum_error_bound": 1e-10 if gaps and alg == "recipe" else None})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("diffs, verdict", [
    ([0.0, 0.1, -0.1, 0.05, 0.0], "supported"),      # CI well inside +-0.5
    ([2.0, 2.2, 1.9, 2.1, 2.0], "not supported"),    # CI wholly above +0.5: a difference beyond the margin
    ([0.2, 1.4, -0.6, 0.9, 0.1], "inconclusive"),    # CI straddles the margin
    ([0.1], "inconclusive"),                         # one seed: no interval
])
def test_equivalence_gives_each_verdict(diffs, verdict):
    result = claims.equivalence(np.array(diffs), margin=0.5, alpha=0.05)
    assert result["verdict"] == verdict
    if len(diffs) > 1:
        low, high = result["ci"]
        assert low < result["mean"] < high and result["ci_level"] == pytest.approx(0.9)


def test_a_significant_difference_inside_the_margin_is_still_equivalent():
    # +0.16 points, paired p < 0.05: significant, but shown to lie within +-0.5
    result = claims.equivalence(np.array([0.14, 0.18, 0.16, 0.15, 0.17]), margin=0.5)
    assert result["p_value_difference"] < 0.05 and result["verdict"] == "supported"


@pytest.mark.parametrize("recipe_errors, verdict", [
    ([1.0, 2.0, 3.0, 1.5, 2.5], "supported"),
    ([3.5, 4.5, 5.5, 4.0, 5.0], "not supported"),
    ([1.2, 3.4, 2.0, 2.9, 2.1], "inconclusive"),
])
def test_r1_verdicts(recipe_errors, verdict):
    r1 = recipe_claims.r1_comparable(_runs([1.0, 2.0, 3.0, 1.5, 2.5], recipe_errors), 0.5, 0.05, [])
    assert r1["id"] == "R1" and r1["verdict"] == verdict and not r1["reconstructed"]
    assert r1["measured"]["groups"][0]["seeds"] == 5


def test_r2_verdicts():
    assert recipe_claims.r2_expressivity(_runs([1, 2], [1, 2]), [])["verdict"] == "supported"
    assert recipe_claims.r2_expressivity(_runs([1, 2], [1, 2], full_rank=False), [])["verdict"] == "not supported"
    controls_only = _runs([1, 2], [1, 2], condition="narrow_width")
    assert recipe_claims.r2_expressivity(controls_only, [])["verdict"] == "inconclusive"  # no standard run


@pytest.mark.parametrize("gaps, verdict", [((1.0, 0.05), "supported"), ((1.0, 0.5), "not supported"),
                                           ((1e-8, 1e-9), "inconclusive"), (None, "inconclusive")])
def test_r3_verdicts(gaps, verdict):
    r3 = recipe_claims.r3_convergence(_runs([1, 2], [1, 2], gaps=gaps), 0.1, 1e-6, [])
    assert r3["verdict"] == verdict and r3["reconstructed"]


def test_condition_checks_pass_and_fail():
    good = pd.concat([_runs([1, 2], [1, 2], gaps=(1.0, 0.1)),
                      _runs([90, 90], [90, 90], full_rank=False, condition="narrow_width", m_h=32,
                            infimum="positive", gaps=(1.0, 0.1))])
    c1, c2, c3 = recipe_claims.condition_checks(good, [])
    assert (c1["verdict"], c2["verdict"], c3["verdict"]) == ("passed", "passed", "passed")
    leaky = good.copy()
    leaky.loc[(leaky.m_H == 32) & (leaky.algorithm == "recipe"), "cert_full_rank"] = True  # a control certified
    leaky.loc[(leaky.m_H == 100) & (leaky.algorithm == "recipe"), "p2_infimum_kind"] = "undecided"
    leaky.loc[leaky.algorithm == "recipe", "p2_optimum_converged"] = False
    c1, c2, c3 = recipe_claims.condition_checks(leaky, [])
    assert (c1["verdict"], c2["verdict"], c3["verdict"]) == ("failed", "failed", "failed")


def test_overall_combines_parts():
    assert claims.overall(["supported", "supported"]) == "supported"
    assert claims.overall(["supported", "inconclusive"]) == "inconclusive"
    assert claims.overall(["inconclusive", "not supported"]) == "not supported"
    assert claims.overall([]) == "inconclusive"


def test_merge_keeps_checks_apart_and_refuses_duplicate_ids(tmp_path):
    claim = claims.make_claim("R1", "s", "src", [], {}, "supported", False, "rule")
    check = claims.make_check("C1", "s", [], {}, True, "rule")
    claims.write_fragment(tmp_path / "a.json", "a", [claim, check])
    claims.write_fragment(tmp_path / "b.json", "b", [{**claim, "id": "X", "verdict": "not supported"}])
    merged = claims.merge([tmp_path / "a.json", tmp_path / "b.json"])
    assert [c["id"] for c in merged["claims"]] == ["R1", "X"] and [c["id"] for c in merged["checks"]] == ["C1"]
    assert merged["summary"] == {"supported": 1, "not supported": 1, "inconclusive": 0}
    assert merged["checks_summary"] == {"passed": 1, "failed": 0}
    with pytest.raises(ValueError, match="R1 appears twice"):
        claims.merge([tmp_path / "a.json", tmp_path / "a.json"])
    with pytest.raises(ValueError, match="verdict"):
        claims.make_claim("R9", "s", "src", [], {}, "probably", False, "rule")
