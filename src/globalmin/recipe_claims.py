"""The Recipe paper's claims (R1-R3, R5, R6) and the instrument checks of its conditions (C1-C4), from the runs table.

R1 and R5 are the claims the paper leads with (comparable test error, for base = SGD and for every other base the
experiment runs); R2, R3 and R6 rest on the reconstruction of the algorithm and of the expressivity condition
(docs/science.md). Which runs each rule reads:
- R1, R5: Table 1's runs (the data set's labels, cross-entropy, m_H = n), paired by seed, per data set,
  augmentation and tau: every tau the runs have is judged, and the headline is read from all of them.
- R2: every A(base) run of Table 1's runs (every tau): the setting where the paper says the condition holds.
- R3: every A(base) run whose phase 2 was continued on the horizon (no augmentation, head only), every condition.
- R6: the width sweep's runs under the squared loss.
The checks hold by construction when the instruments work: a control with m_H < n cannot have rank n (C1), rank n
lets the head fit any labels, so the unregularised infimum 0 is reached (C2), the optimum solver met its error bound
(C3), and under the squared loss the certificate and the exact infimum agree (C4: both are the rank of the features).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from globalmin.claims import RECIPE, equivalence, make_check, make_claim, overall
from globalmin.runs_table import table1_runs


def comparable_per_tau(runs: pd.DataFrame, margin: float, alpha: float) -> list[dict[str, Any]]:
    """Per data set, augmentation and tau: the paired TOST of A(base) - base test error over seeds, and how many
    test predictions phase 2 changed (A(base) at T against base's network at tau)."""
    rows = table1_runs(runs, ablation=True)
    base = rows[rows.algorithm == "base"].set_index(["dataset", "augment", "seed"]).test_error
    groups = []
    for (dataset, augmented, frac), group in rows[rows.algorithm == "recipe"].groupby(
            ["dataset", "augment", "tau_fraction"], sort=True):
        paired = group.assign(base_error=base.reindex(list(zip(group.dataset, group.augment, group.seed))).values)
        paired = paired.dropna(subset=["base_error"])
        test = equivalence((paired.test_error - paired.base_error).to_numpy(), margin, alpha)
        changed = paired.test_predictions_changed.dropna()
        groups.append({"dataset": dataset, "augment": bool(augmented), "tau_fraction": float(frac),
                       "base_mean": float(paired.base_error.mean()), "recipe_mean": float(paired.test_error.mean()),
                       "test_predictions_changed_mean": float(changed.mean()) if len(changed) else None,
                       "test_predictions_changed_max": int(changed.max()) if len(changed) else None,
                       "n_test": int(paired.n_test.max()) if paired.n_test.notna().any() else None, **test})
    return groups


def comparable(claim_id: str, runs: pd.DataFrame, bases: list[str], margin: float, alpha: float,
               evidence: list[str], statement: str) -> dict[str, Any]:
    """R1 / R5: A(base)'s test error is equivalent to base's within +-margin points, at every tau, for these bases."""
    groups = []
    for name in bases:
        groups += [{"base": name, **g} for g in comparable_per_tau(runs[runs.base == name], margin, alpha)]
    return make_claim(
        claim_id, statement, RECIPE, evidence, {"groups": groups, "margin_pp": margin, "alpha": alpha},
        overall([g["verdict"] for g in groups]), reconstructed=False,
        rule=f"per base, data set, augmentation and tau (every tau the runs have), two one-sided tests on the paired "
             f"differences A(base) - base of test error over seeds: supported when the {1 - 2 * alpha:.0%} confidence "
             f"interval of the mean difference lies inside ±{margin:g} percentage points (the margin is this "
             f"project's choice), not supported when it lies wholly outside ±{margin:g} (a difference beyond the "
             f"margin is established), inconclusive otherwise or with fewer than 2 seeds. The headline is read from "
             f"every tau: not supported if any group is, supported if all are, inconclusive otherwise. Beside each "
             f"group, how many test predictions phase 2 changed (A(base) at T against base at tau): where it changed "
             f"none, the group says only that base at tau is comparable to base at T")


def r2_expressivity(runs: pd.DataFrame, evidence: list[str]) -> dict[str, Any]:
    """R2: the expressivity condition holds at tau in every A(base) run of Table 1's settings."""
    certs = table1_runs(runs, ablation=True)
    certs = certs[certs.algorithm == "recipe"]
    full = int(certs.cert_full_rank.astype(bool).sum())
    measured = {"runs_full_rank": full, "runs": len(certs)}
    if len(certs):
        measured.update(min_sigma_min=float(certs.cert_sigma_min.min()),
                        min_sigma_min_over_tolerance=float((certs.cert_sigma_min / certs.cert_tolerance).min()),
                        runs_full_rank_unperturbed=int(certs.cert_unperturbed_full_rank.fillna(False).astype(bool).sum()),
                        min_sigma_min_unperturbed=(None if certs.cert_unperturbed_sigma_min.isna().all()
                                                   else float(certs.cert_unperturbed_sigma_min.min())),
                        runs_full_rank_float32=int(certs.cert_full_rank_float32.fillna(False).astype(bool).sum()),
                        min_rank_float32=None if certs.cert_rank_float32.isna().all()
                        else int(certs.cert_rank_float32.min()))
    verdict = "inconclusive" if not len(certs) else "supported" if full == len(certs) else "not supported"
    return make_claim(
        "R2", "The expressivity condition holds at tau: the wide layer's n x m_H feature matrix has rank n.",
        RECIPE, evidence, measured, verdict, reconstructed=True,
        rule="supported when every A(base) run of Table 1's settings (every base and tau) has a certificate of "
             "numerical rank n at tau (float64 features after the perturbation, NumPy's matrix_rank tolerance); not "
             "supported if any has not; inconclusive without runs. The certificate of the unperturbed features and "
             "the rank at float32's tolerance are reported beside it, not judged")


def r3_convergence(runs: pd.DataFrame, fraction: float, floor: float, evidence: list[str]) -> dict[str, Any]:
    """R3: phase 2 converges toward the optimum of its convex problem on the horizon: gap <= fraction x gap at tau
    (reached), still falling at its fitted rate (not yet), or not falling (stalled)."""
    solved = runs[(runs.algorithm == "recipe") & runs.h_gap_at_horizon.notna()]
    judged = solved[solved.p2_gap_at_tau > floor]
    reached = judged.h_gap_at_horizon <= fraction * judged.p2_gap_at_tau
    stalled = ~reached & ((judged.h_gap_at_horizon >= judged.p2_gap_final) | judged.h_rate_per_epoch.isna()
                          | (judged.h_rate_per_epoch >= 1.0))
    per_group = [{"dataset": d, "condition": c, "tau_fraction": t, "runs": len(g),
                  "reached": int(reached[g.index].sum()), "stalled": int(stalled[g.index].sum()),
                  "median_gap_at_tau": float(g.p2_gap_at_tau.median()),
                  "median_gap_at_T": float(g.p2_gap_final.median()),
                  "median_gap_at_horizon": float(g.h_gap_at_horizon.median()),
                  "median_rate_per_epoch": None if g.h_rate_per_epoch.isna().all()
                  else float(g.h_rate_per_epoch.median()),
                  "horizon_epochs": int(g.h_epochs.iloc[0]), "horizon_lr": float(g.h_lr.iloc[0])}
                 for (d, c, t), g in judged.groupby(["dataset", "condition", "tau_fraction"], sort=True)]
    verdict = ("inconclusive" if not len(judged) else "not supported" if stalled.any() else
               "supported" if reached.all() else "inconclusive")
    return make_claim(
        "R3", "Phase 2 converges to the global minimum of its convex problem (the head on the frozen features).",
        RECIPE, evidence,
        {"runs_continued": len(solved), "runs_judged": len(judged), "runs_reached": int(reached.sum()),
         "runs_stalled": int(stalled.sum()),
         "runs_reached_by_T": int((judged.p2_gap_final <= fraction * judged.p2_gap_at_tau).sum()),
         "gap_fraction": fraction, "gap_floor": floor, "groups": per_group},
        verdict, reconstructed=True,
        rule=f"on every A(base) run whose phase 2 was continued past T on the horizon (recipe.horizon: no "
             f"augmentation, head only; base's optimizer with its state) and whose gap L(W_tau) - L* exceeds "
             f"{floor:g}: a run has reached the optimum when its gap at the horizon's end is at most {fraction:g} x "
             f"its value at tau, and has stalled when it has not and its gap did not fall over the horizon (the gap "
             f"at the horizon's end at least the gap at T, or a fitted rate per epoch of 1 or more). Supported when "
             f"every run has reached it; not supported when any run has stalled; inconclusive otherwise (still "
             f"falling: the guarantee is asymptotic and the horizon finite) or without such runs. L includes base's "
             f"weight decay, so L* is unique (strongly convex). What base's own budget (T) reaches and the fitted "
             f"rate are reported beside")


def r6_sweep(sweep: pd.DataFrame, evidence: list[str]) -> dict[str, Any]:
    """R6: under the squared loss, the phase-2 optimum fits random labels exactly at the certified widths."""
    squared = sweep[(sweep.sweep_loss == "squared") & sweep.p2_optimum_train_error.notna()]
    fits = squared.p2_optimum_train_error == 0
    certified = squared.cert_full_rank.astype(bool)
    agree = fits == certified
    ce = sweep[(sweep.sweep_loss == "cross_entropy") & sweep.p2_infimum_kind.notna()]
    # why a certified width may still not fit: weight decay keeps the head out of every direction whose singular
    # value s has s^2 << n wd, and trained features' sigma_min is far below sigma_max
    weight = (squared.cert_sigma_min ** 2 / (squared.n_train * squared.p2_weight_decay)) if (
        "p2_weight_decay" in squared) else pd.Series(dtype=float)
    measured = {"runs": len(squared), "certified": int(certified.sum()), "agree": int(agree.sum()),
                "max_sigma_min_squared_over_n_wd_certified": (float(weight[certified].max())
                                                              if certified.any() and weight.notna().any() else None),
                "points": [{"m_H_over_n": float(r.width_ratio), "seed": int(r.seed), "certified": bool(c),
                            "optimum_train_error": float(r.p2_optimum_train_error)}
                           for (_, r), c in zip(squared.iterrows(), certified)],
                "cross_entropy_infimum_zero_without_rank_n": int(
                    ((ce.p2_infimum_kind == "zero") & ~ce.cert_full_rank.astype(bool)).sum())}
    verdict = ("inconclusive" if not len(squared) or certified.all() or not certified.any() else
               "supported" if agree.all() else "not supported")
    return make_claim(
        "R6", "The expressivity condition decides whether phase 2 can fit arbitrary labels: under the squared loss, "
              "random labels are fit exactly where the features have rank n.", RECIPE, evidence, measured, verdict,
        reconstructed=True,
        rule="on the width sweep's A(base) runs under the squared loss (random labels, m_H = ratio x n, main tau): "
             "supported when the phase-2 optimum (base's weight decay, solved exactly) has 0% training error at "
             "every certified width and a positive one at every uncertified width; not supported when a certified "
             "width does not fit or an uncertified one does; inconclusive without such runs or when every width is "
             "certified or none is (the sweep then tests nothing). Beside it, sigma_min^2 / (n wd) at the certified "
             "widths: below 1, base's weight decay outweighs the smallest feature direction, and the regularised "
             "optimum need not fit even with rank n. Under cross-entropy rank n is sufficient, not necessary: widths "
             "whose infimum is 0 without rank n are counted beside")


def condition_checks(runs: pd.DataFrame, sweep: pd.DataFrame, evidence: list[str]) -> list[dict[str, Any]]:
    """C1 (controls with m_H < n fail the certificate), C2 (rank n reaches the infimum 0), C3 (solver bound met),
    C4 (squared loss: certified exactly where the exact infimum is 0)."""
    recipe = runs[runs.algorithm == "recipe"]
    controls = recipe[recipe.m_H < recipe.n_train]
    certified = recipe[recipe.cert_full_rank.astype(bool) & recipe.p2_infimum_kind.notna()]
    solved = recipe[recipe.p2_gap_final.notna()]
    squared = sweep[(sweep.sweep_loss == "squared") & sweep.p2_infimum_kind.notna()]
    coincide = squared.cert_full_rank.astype(bool) == (squared.p2_infimum_kind == "zero")
    return [
        make_check("C1", "Rank-deficient controls (m_H < n) fail the expressivity certificate.", evidence,
                   {"control_runs": len(controls), "certified": int(controls.cert_full_rank.astype(bool).sum())},
                   bool(len(controls)) and not controls.cert_full_rank.astype(bool).any(),
                   rule="passes when there are control runs and none of them is certified rank n"),
        make_check("C2", "With rank n, phase 2's unregularised problem reaches its infimum 0 (any labels can be fit).",
                   evidence, {"certified_runs_solved": len(certified),
                              "reached_zero": int((certified.p2_infimum_kind == "zero").sum())},
                   bool(len(certified)) and (certified.p2_infimum_kind == "zero").all(),
                   rule="passes when every certified run whose problem was solved reaches a loss below the solver's "
                        "zero tolerance without weight decay"),
        make_check("C3", "The exact optimum of every solved phase-2 problem meets its error bound.", evidence,
                   {"runs": len(solved), "converged": int(solved.p2_optimum_converged.astype(bool).sum()),
                    "largest_bound": float(solved.p2_optimum_error_bound.max()) if len(solved) else None},
                   bool(len(solved)) and solved.p2_optimum_converged.astype(bool).all(),
                   rule="passes when every solved run's rigorous bound ||grad L||^2 / (2 wd) on L(W) - L* is at most "
                        "recipe.optimum.error_bound"),
        make_check("C4", "Under the squared loss the certificate holds exactly where phase 2's unregularised infimum "
                         "is 0 (both are the rank of the features).", evidence,
                   {"runs": len(squared), "coincide": int(coincide.sum()),
                    "certified": int(squared.cert_full_rank.astype(bool).sum())},
                   bool(len(squared)) and coincide.all(),
                   rule="passes when, on every width-sweep run under the squared loss, the certificate at tau and the "
                        "exact infimum (the residual of the one-hot labels outside the span of [features, 1]) agree"),
    ]


def judge(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str], sweep: pd.DataFrame) -> list[dict[str, Any]]:
    """R1-R3, R5, R6 and C1-C4 from the runs table (and the width sweep's runs); cfg is the claims section."""
    claims = cfg["claims"] if "claims" in cfg else cfg
    margin, alpha = claims["equivalence_margin_pp"], claims["alpha"]
    others = sorted(set(table1_runs(runs).base) - {"sgd"})
    return [comparable("R1", runs, ["sgd"], margin, alpha, evidence,
                       "A(base) reaches a test error comparable to base's (same hyper-parameters, same total "
                       "iterations), for base = SGD."),
            r2_expressivity(runs, evidence),
            r3_convergence(runs, claims["gap_fraction"], claims["gap_floor"], evidence),
            comparable("R5", runs, others, margin, alpha, evidence,
                       f"A(base) reaches a test error comparable to base's for bases other than SGD "
                       f"({', '.join(others) or 'none run'}): the operator works for any first-order base."),
            r6_sweep(sweep, evidence),
            *condition_checks(runs, sweep, evidence)]
