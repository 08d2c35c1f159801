"""Claims: paired comparison, phase-2 monotonicity, verdicts, merging."""

from __future__ import annotations

import pandas as pd
import pytest

from globalmin import claims

CFG = {"comparable_tolerance": 1.0, "monotone_rel_tol": 0.01}


def _runs(base: list[float], recipe: list[float], full_rank: bool = True) -> pd.DataFrame:
    rows = []
    for alg, errors in (("base", base), ("recipe", recipe)):
        for seed, err in enumerate(errors):
            rows.append({"dataset": "digits", "augment": False, "seed": seed, "algorithm": alg, "test_error": err,
                         "tau_ablation": False,
                         "cert_full_rank": full_rank if alg == "recipe" else None,
                         "cert_sigma_min": 1e-5 if full_rank else 0.0, "cert_tolerance": 1e-10})
    return pd.DataFrame(rows)


def _curves(values: list[float], augment: bool = False) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "digits", "augment": augment, "seed": 0, "algorithm": "recipe", "phase": 2,
                         "tau_ablation": False,
                         "iteration": range(len(values)), "train_objective": values})


def test_paired_comparison_is_paired_by_seed():
    (result,) = claims.paired_comparison(_runs([1.0, 2.0, 3.0], [1.5, 2.5, 3.5]), tolerance=1.0)
    assert result["mean_difference_pp"] == pytest.approx(0.5) and result["ci95_pp"] == [0.5, 0.5]
    assert result["within_tolerance"] and result["seeds"] == 3
    (far,) = claims.paired_comparison(_runs([1.0, 2.0, 3.0], [3.0, 4.5, 5.0]), tolerance=1.0)
    assert not far["within_tolerance"] and far["paired_t_p_value"] < 0.05


def test_verdicts_follow_the_measurements():
    good = claims.recipe_claims(_runs([1, 2], [1.2, 2.1]), _curves([1.0, 0.5, 0.4]), CFG, ["x"])
    assert [c["verdict"] for c in good] == ["supported"] * 3
    bad = claims.recipe_claims(_runs([1, 2], [4, 5], full_rank=False), _curves([1.0, 1.2, 0.9]), CFG, ["x"])
    assert [c["verdict"] for c in bad] == ["not supported"] * 3
    one_seed = claims.recipe_claims(_runs([1], [1.1]), _curves([1.0, 0.9]), CFG, ["x"])
    assert one_seed[0]["verdict"] == "inconclusive"
    group = one_seed[0]["measured"]["groups"][0]
    assert group["ci95_pp"] is None and group["paired_t_p_value"] is None  # null, not NaN (JSON-safe)


def test_augmented_runs_are_listed_but_not_judged_for_monotonicity():
    curves = pd.concat([_curves([1.0, 0.9]), _curves([1.0, 1.5], augment=True)])
    r3 = claims.recipe_claims(_runs([1, 2], [1, 2]), curves, CFG, [])[2]
    assert r3["verdict"] == "supported" and r3["measured"]["augmented_runs_monotone"] == 0
    only_aug = claims.recipe_claims(_runs([1, 2], [1, 2]), _curves([1.0, 0.9], augment=True), CFG, [])[2]
    assert only_aug["verdict"] == "inconclusive"


def test_small_rises_within_tolerance_count_as_monotone():
    (run,) = claims.phase2_monotonicity(_curves([1.0, 1.005, 0.9]), rel_tol=0.01)
    assert run["monotone"] and run["largest_relative_rise"] == pytest.approx(0.005)
    (run,) = claims.phase2_monotonicity(_curves([1.0, 0.99, 1.01]), rel_tol=0.01)
    assert not run["monotone"]  # ends above its value at tau


def test_tau_ablation_runs_do_not_enter_the_main_claims():
    runs = _runs([1, 2], [1.1, 2.1])
    ablated = runs[runs.algorithm == "recipe"].assign(tau_ablation=True, test_error=[9.0, 9.0], cert_full_rank=False)
    verdicts = [c["verdict"] for c in claims.recipe_claims(pd.concat([runs, ablated]), _curves([1.0, 0.9]), CFG, [])]
    assert verdicts == ["supported"] * 3


def test_merge_refuses_duplicate_ids(tmp_path):
    claim = claims.make_claim("R1", "s", "src", [], {}, "supported", False, "rule")
    claims.write_fragment(tmp_path / "a.json", "a", [claim])
    claims.write_fragment(tmp_path / "b.json", "b", [{**claim, "id": "X"}])
    merged = claims.merge([tmp_path / "a.json", tmp_path / "b.json"])
    assert [c["id"] for c in merged["claims"]] == ["R1", "X"] and merged["summary"]["supported"] == 2
    with pytest.raises(ValueError, match="R1 appears twice"):
        claims.merge([tmp_path / "a.json", tmp_path / "a.json"])
    with pytest.raises(ValueError, match="verdict"):
        claims.make_claim("R9", "s", "src", [], {}, "probably", False, "rule")
