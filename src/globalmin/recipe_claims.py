"""The Recipe paper's claims (R1-R3) and the instrument checks of its conditions (C1-C3), from the runs table.

R1 is a headline claim of the paper (comparable test error); R2 and R3 rest on the reconstruction of the
algorithm and of the expressivity condition (docs/science.md). Which runs each rule reads:
- R1: the standard condition at the main tau (Table 1), paired by seed, per data set and augmentation.
- R2: every A(base) run of the standard condition (every tau): the condition the paper says holds.
- R3: every A(base) run whose phase-2 problem was solved (no augmentation, head only), every condition and tau.
The checks hold by construction when the instruments work: a control with m_H < n cannot have rank n (C1),
rank n lets the head fit any labels, so the unregularised infimum 0 is reached (C2), and the optimum solver
met its error bound (C3).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from globalmin.aggregate import main_runs
from globalmin.claims import RECIPE, equivalence, make_check, make_claim, overall


def r1_comparable(runs: pd.DataFrame, margin: float, alpha: float, evidence: list[str]) -> dict[str, Any]:
    """R1: A(base)'s test error is equivalent to base's within +-margin points (paired TOST per group)."""
    groups = []
    for (dataset, augmented), group in main_runs(runs).groupby(["dataset", "augment"], sort=True):
        wide = group.pivot(index="seed", columns="algorithm", values="test_error").dropna()
        test = equivalence((wide["recipe"] - wide["base"]).to_numpy(), margin, alpha)
        groups.append({"dataset": dataset, "augment": bool(augmented), "base_mean": float(wide["base"].mean()),
                       "recipe_mean": float(wide["recipe"].mean()), **test})
    return make_claim(
        "R1", "A(base) reaches a test error comparable to base's (same hyper-parameters, same total iterations).",
        RECIPE, evidence, {"groups": groups, "margin_pp": margin, "alpha": alpha},
        overall([g["verdict"] for g in groups]), reconstructed=False,
        rule=f"per data set and augmentation, two one-sided tests on the paired differences A(base) - base of test "
             f"error over seeds: supported when the {1 - 2 * alpha:.0%} confidence interval of the mean difference "
             f"lies inside ±{margin:g} percentage points (the margin is this project's choice), not supported when "
             f"it lies wholly outside ±{margin:g} (a difference beyond the margin is established), inconclusive "
             f"otherwise or with fewer than 2 seeds; the claim is not supported if any group is not, supported if "
             f"all are")


def r2_expressivity(runs: pd.DataFrame, evidence: list[str]) -> dict[str, Any]:
    """R2: the expressivity condition holds at tau in every standard A(base) run."""
    certs = runs[(runs.algorithm == "recipe") & (runs.condition == "standard")]
    full = int(certs.cert_full_rank.astype(bool).sum())
    measured = {"runs_full_rank": full, "runs": len(certs)}
    if len(certs):
        measured.update(min_sigma_min=float(certs.cert_sigma_min.min()),
                        min_sigma_min_over_tolerance=float((certs.cert_sigma_min / certs.cert_tolerance).min()),
                        runs_full_rank_float32=int(certs.cert_full_rank_float32.astype(bool).sum()),
                        min_rank_float32=None if certs.cert_rank_float32.isna().all()
                        else int(certs.cert_rank_float32.min()))
    verdict = "inconclusive" if not len(certs) else "supported" if full == len(certs) else "not supported"
    return make_claim(
        "R2", "The expressivity condition holds at tau: the wide layer's n x m_H feature matrix has rank n.",
        RECIPE, evidence, measured, verdict, reconstructed=True,
        rule="supported when every A(base) run of the standard condition (every tau) has a certificate of numerical "
             "rank n at tau (float64 features, NumPy's matrix_rank tolerance); not supported if any has not; "
             "inconclusive without runs. The rank at float32's tolerance is reported beside it, not judged")


def r3_convergence(runs: pd.DataFrame, fraction: float, floor: float, evidence: list[str]) -> dict[str, Any]:
    """R3: phase 2 converges toward the optimum of its convex problem: gap at T <= fraction x gap at tau."""
    solved = runs[(runs.algorithm == "recipe") & runs.p2_gap_final.notna()]
    judged = solved[solved.p2_gap_at_tau > floor]
    falls = judged.p2_gap_final <= fraction * judged.p2_gap_at_tau
    per_group = [{"dataset": d, "condition": c, "tau_fraction": t, "runs": len(g),
                  "converged_runs": int((g.p2_gap_final <= fraction * g.p2_gap_at_tau).sum()),
                  "median_gap_at_tau": float(g.p2_gap_at_tau.median()),
                  "median_gap_final": float(g.p2_gap_final.median()),
                  "median_gap_ratio": float((g.p2_gap_final / g.p2_gap_at_tau).median())}
                 for (d, c, t), g in judged.groupby(["dataset", "condition", "tau_fraction"], sort=True)]
    verdict = "inconclusive" if not len(judged) else "supported" if falls.all() else "not supported"
    return make_claim(
        "R3", "Phase 2 converges to the global minimum of its convex problem (the head on the frozen features).",
        RECIPE, evidence,
        {"runs_solved": len(solved), "runs_judged": len(judged), "runs_converged": int(falls.sum()),
         "gap_fraction": fraction, "gap_floor": floor, "groups": per_group},
        verdict, reconstructed=True,
        rule=f"on every A(base) run whose phase-2 problem was solved exactly (no augmentation, head only) and whose "
             f"gap L(W_tau) - L* exceeds {floor:g}: supported when in every such run the gap at T is at most "
             f"{fraction:g} x its value at tau, under the schedule the run actually used (base's learning rates, "
             f"epochs and batch size); not supported if any run's gap stays above that; inconclusive without such "
             f"runs. L includes base's weight decay, so L* is unique (strongly convex)")


def condition_checks(runs: pd.DataFrame, evidence: list[str]) -> list[dict[str, Any]]:
    """C1 (controls with m_H < n fail the certificate), C2 (rank n reaches the infimum 0), C3 (solver bound met)."""
    recipe = runs[runs.algorithm == "recipe"]
    controls = recipe[recipe.m_H < recipe.n_train]
    certified = recipe[recipe.cert_full_rank.astype(bool) & recipe.p2_infimum_kind.notna()]
    solved = recipe[recipe.p2_gap_final.notna()]
    return [
        make_check("C1", "Rank-deficient controls (m_H < n) fail the expressivity certificate.", evidence,
                   {"control_runs": len(controls), "certified": int(controls.cert_full_rank.astype(bool).sum())},
                   bool(len(controls)) and not controls.cert_full_rank.astype(bool).any(),
                   rule="passes when there are control runs and none of them is certified rank n"),
        make_check("C2", "With rank n, phase 2's unregularised problem reaches its infimum 0 (any labels can be fit).",
                   evidence, {"certified_runs_solved": len(certified),
                              "reached_zero": int((certified.p2_infimum_kind == "zero").sum())},
                   bool(len(certified)) and (certified.p2_infimum_kind == "zero").all(),
                   rule="passes when every certified run whose problem was solved reaches a mean cross-entropy below "
                        "the solver's zero tolerance without weight decay"),
        make_check("C3", "The exact optimum of every solved phase-2 problem meets its error bound.", evidence,
                   {"runs": len(solved), "converged": int(solved.p2_optimum_converged.astype(bool).sum()),
                    "largest_bound": float(solved.p2_optimum_error_bound.max()) if len(solved) else None},
                   bool(len(solved)) and solved.p2_optimum_converged.astype(bool).all(),
                   rule="passes when every solved run's rigorous bound ||grad L||^2 / (2 wd) on L(W) - L* is at most "
                        "recipe.optimum.error_bound"),
    ]


def judge(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> list[dict[str, Any]]:
    """R1-R3 and C1-C3 from the runs table; cfg is the claims config section."""
    return [r1_comparable(runs, cfg["equivalence_margin_pp"], cfg["alpha"], evidence),
            r2_expressivity(runs, evidence),
            r3_convergence(runs, cfg["gap_fraction"], cfg["gap_floor"], evidence),
            *condition_checks(runs, evidence)]
