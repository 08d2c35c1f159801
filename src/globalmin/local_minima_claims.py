"""Verdicts of the local-minimum study (Kawaguchi, Huang & Kaelbling 2019): claims B1, B4, B5 and checks B2, B3.

B2 (L − LB → 0 as ‖∇L‖ → 0) and B3 (each layer's contribution to ||P[J] y||^2 is non-negative) hold by
construction: L − LB <= ‖∇L‖² / (2 σ_min(J)²) is an identity, and adding columns to J cannot shrink a projection.
They are instrument checks of the Jacobian, projection and gradient code, not claims. B5 (rank J rises with size)
is the part of the old B2 that can fail.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from globalmin.claims import make_check, make_claim

SOURCE = ("Kawaguchi, Huang & Kaelbling, Effect of Depth and Width on Local Minima in Deep Learning "
          "(Neural Computation 2019)")


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per data kind, activation, depth and width: runs, certified, collapsed, median certified loss, baselines."""
    keys = ["data", "activation", "depth", "width"]
    certified = runs[runs.certified.astype(bool) & ~runs.collapsed.astype(bool)]
    table = runs.groupby(keys).agg(runs=("seed", "size"), certified=("certified", "sum"),
                                   collapsed=("collapsed", "sum"), ols_loss=("ols_loss", "first"),
                                   rf_loss=("rf_loss", "first"))
    table["median_certified_loss"] = certified.groupby(keys)["loss"].median()
    table["max_gap_certified"] = certified.groupby(keys)["gap"].max()
    return table.reset_index()


# --------------------------------------------------------------------------------------------- claims

def judged(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the verdicts read: not collapsed (collapsed runs are counted beside every verdict)."""
    return runs[~runs.collapsed.astype(bool)]


def trend(values: pd.Series, losses: pd.Series, alpha: float) -> dict[str, Any]:
    """Spearman correlation of loss with size in one slice: 'falls', 'rises' (p < alpha) or 'flat'."""
    if losses.nunique() < 2:  # all tied (e.g. every run interpolates): no ranking to test
        return {"rho": None, "p": None, "trend": "tied"}
    if len(losses) < 3:  # no p-value from two points
        return {"rho": None, "p": None, "trend": "flat"}
    rho, p = stats.spearmanr(values, losses)
    if not (np.isfinite(rho) and np.isfinite(p)):
        return {"rho": None, "p": None, "trend": "flat"}
    label = ("falls" if rho < 0 else "rises") if p < alpha else "flat"
    return {"rho": float(rho), "p": float(p), "trend": label}


def trend_slices(runs: pd.DataFrame, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """B1: per data kind and activation, the loss trend with width at each depth and with depth at each width.

    Losses below loss_floor x (the zero predictor's loss) are set to that floor, so that runs that all
    interpolate tie instead of being ranked by rounding noise.
    """
    out = []
    frame = runs.assign(loss_eff=np.maximum(runs.loss, cfg["loss_floor"] * runs.zero_loss))
    for (kind, activation), group in frame.groupby(["data", "activation"], sort=True):
        for along, fixed in (("width", "depth"), ("depth", "width")):
            for value, part in group.groupby(fixed, sort=True):
                if part[along].nunique() < 2 or len(part) < cfg["min_slice_runs"]:
                    continue
                out.append({"data": kind, "activation": activation, "along": along, fixed: int(value),
                            "runs": len(part), **trend(part[along], part.loss_eff, cfg["alpha"])})
    return out


def direction_verdict(slices: list[dict[str, Any]], along: str, fraction: float) -> dict[str, Any]:
    """Pool the slices of one direction: 'falls' (most fall, none rises), 'rises' (most rise), else 'mixed'.

    Tied slices (every loss at the floor: all at the global minimum) can neither fall nor rise; they are
    counted but left out of the fractions.
    """
    mine = [s for s in slices if s["along"] == along and s["trend"] != "tied"]
    falls = sum(s["trend"] == "falls" for s in mine)
    rises = sum(s["trend"] == "rises" for s in mine)
    verdict = ("none" if not mine else "falls" if falls >= fraction * len(mine) and not rises
               else "rises" if rises >= fraction * len(mine) else "mixed")
    return {"slices": len(mine), "falling": falls, "rising": rises, "verdict": verdict,
            "tied_at_floor": sum(s["along"] == along and s["trend"] == "tied" for s in slices)}


def b1_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """B1: the certified local-minimum loss falls with width (per depth) and with depth (per width)."""
    certified = judged(runs)[judged(runs).certified.astype(bool)]
    slices = trend_slices(certified, cfg)
    directions = {a: direction_verdict(slices, a, cfg["b1_fraction"]) for a in ("width", "depth")}
    verdicts = {d["verdict"] for d in directions.values()}
    verdict = ("supported" if verdicts == {"falls"} else "not supported" if "rises" in verdicts
               else "inconclusive")
    # the same trends over every non-collapsed run, certified or not: context, not the verdict
    approximate = trend_slices(judged(runs), cfg)
    return make_claim(
        "B1", "The local-minimum loss falls as width grows (at each depth) and as depth grows (at each width).",
        SOURCE, evidence,
        {"directions": directions, "slices": slices, "certified_runs": len(certified),
         "certified_above_floor": int((certified.loss > cfg["loss_floor"] * certified.zero_loss).sum()),
         "non_collapsed_runs": len(judged(runs)), "collapsed_runs": int(runs.collapsed.sum()),
         "all_runs_directions": {a: direction_verdict(approximate, a, cfg["b1_fraction"])
                                 for a in ("width", "depth")},
         "median_certified_loss": {"/".join(map(str, k)): float(v) for k, v in
                                   certified.groupby(["data", "activation", "depth", "width"]).loss.median().items()}},
        verdict, reconstructed=True,
        rule=f"on certified (||grad L|| <= {cfg['grad_tol']:g}), non-collapsed runs, per data kind and activation: "
             f"Spearman correlation of the loss (floored at {cfg['loss_floor']:g} x the zero predictor's loss) with "
             f"width at each depth and with depth at each width, over seeds (slices with >= {cfg['min_slice_runs']} "
             f"runs and >= 2 sizes); a slice falls/rises when p < {cfg['alpha']}; slices whose losses all tie at "
             f"the floor are counted apart. Supported when, for both "
             f"directions, >= {cfg['b1_fraction']:.0%} of the slices fall and none rises; not supported when >= "
             f"{cfg['b1_fraction']:.0%} of one direction's slices rise; otherwise (or with no usable slice) "
             f"inconclusive")


def b2_check(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """Check B2: L − LB vanishes with ‖∇L‖, as an identity bounds it, and certified runs sit at critical points.

    f(X) lies in col(J) (the output layer is linear), so L − LB = ½‖P[J](f − y)‖², while ∇L = Jᵀ(f − y): hence
    0 <= L − LB <= ‖∇L‖² / (2 σ²) at every θ, σ the smallest singular value of J counted in its rank. "L − LB → 0
    as ‖∇L‖ → 0" is therefore not evidence for the paper; the bound checks the Jacobian, the projection and the
    gradient against each other at both ends of every run, and the certified runs' gap checks the certificate.
    """
    y_sq = 2 * runs.zero_loss  # ‖y‖²: the scale of every rounding tolerance
    ends = pd.DataFrame({  # both ends of every run (collapsed ones too: the identity holds at every θ)
        "gap": np.concatenate([runs.first_gap, runs.gap]) / np.concatenate([y_sq, y_sq]),
        "grad": np.concatenate([runs.first_grad_norm, runs.grad_norm]),
        "sigma": np.concatenate([runs.first_sigma_min_j, runs.sigma_min_j]),
        "y_sq": np.concatenate([y_sq, y_sq])})
    bound = np.where(ends.sigma > 0, ends.grad ** 2 / (2 * ends.sigma.where(ends.sigma > 0, 1.0) ** 2), np.inf)
    excess = ends.gap - bound / ends.y_sq  # relative to ‖y‖²: <= 0 when the bound holds
    ok = judged(runs)
    ok = ok.assign(relative_gap=ok.gap / np.maximum(ok.loss, cfg["loss_floor"] * ok.zero_loss))
    certified, uncertified = ok[ok.certified.astype(bool)], ok[~ok.certified.astype(bool)]
    worst_gap = float(certified.relative_gap.max()) if len(certified) else None
    tol = cfg["contribution_tol"]
    passed = (bool(len(runs)) and bool((excess <= tol).all()) and bool((ends.gap >= -tol).all())
              and (worst_gap is None or worst_gap <= cfg["gap_tol"]))
    return make_check(
        "B2", "L − LB → 0 as ||grad L|| → 0: 0 <= L − LB <= ||grad L||^2 / (2 sigma_min(J)^2) at every run, and the "
        "certified runs are at critical points (L = LB).", evidence,
        {"run_ends": len(ends), "ends_above_bound": int((excess > tol).sum()),
         "max_excess_over_bound": float(excess.max()) if len(ends) else None,
         "min_gap_over_y_norm_sq": float(ends.gap.min()) if len(ends) else None,
         "certified_runs": len(certified), "non_collapsed_runs": len(ok), "collapsed_runs": int(runs.collapsed.sum()),
         "max_relative_gap_certified": worst_gap, "gap_tolerance": cfg["gap_tol"],
         "gap_vs_grad_spearman": trend(ends.grad, ends.gap, cfg["alpha"]),
         "median_relative_gap_uncertified": float(uncertified.relative_gap.median()) if len(uncertified) else None,
         "uncertified_by_activation": uncertified.groupby("activation").size().to_dict(),
         "uncertified_relu_at_kink": int(((uncertified.activation == "relu")
                                          & (uncertified.min_abs_preact <= cfg["kink_tol"])).sum()),
         "median_max_abs_param": {"certified": float(certified.max_abs_param.median()) if len(certified) else None,
                                  "uncertified": float(uncertified.max_abs_param.median())
                                  if len(uncertified) else None}},
        passed,
        rule="".join((  # the clauses of the rule, in order
            f"passes when, at both ends of every run (after the first-order phase and after polishing), "
            f"-{tol:g} ||y||^2 <= L - LB <= ||grad L||^2 / (2 sigma_min(J)^2) + {tol:g} ||y||^2 (an identity: f lies "
            "in col(J), so L - LB = ||P[J] (f - y)||^2 / 2 while grad L = J^T (f - y); it checks J, the projection "
            "and the gradient against each other, not the paper) ",
            f"and every certified (||grad L|| <= {cfg['grad_tol']:g}), non-collapsed run has (L - LB) / "
            f"max(L, {cfg['loss_floor']:g} x zero loss) <= {cfg['gap_tol']:g}; fails otherwise. ",
            f"Uncertified ReLU runs with a pre-activation within {cfg['kink_tol']:g} of 0 are counted as sitting "
            "on a kink")))


def b5_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """B5: rank J at the runs' end points rises with the network's parameter count."""
    ok = judged(runs)
    trends = {f"{k}/{a}": trend(g.n_params, g.rank_j, cfg["alpha"])
              for (k, a), g in ok.groupby(["data", "activation"], sort=True) if g.n_params.nunique() > 1}
    if trends and all(t["trend"] == "rises" for t in trends.values()):
        verdict = "supported"
    elif any(t["trend"] == "falls" for t in trends.values()):
        verdict = "not supported"
    else:
        verdict = "inconclusive"
    return make_claim(
        "B5", "rank J rises with network size: more layers and units add columns to J, and training keeps them "
        "independent.", SOURCE, evidence,
        {"non_collapsed_runs": len(ok), "collapsed_runs": int(runs.collapsed.sum()), "rank_vs_params_spearman": trends,
         "median_rank_by_params": {"/".join(map(str, k)): float(v) for k, v in
                                   ok.groupby(["data", "activation", "n_params"]).rank_j.median().items()},
         "jac_rows": sorted(int(r) for r in ok.jac_rows.unique())},
        verdict, reconstructed=True,
        rule=f"on non-collapsed runs, per data kind and activation, Spearman correlation of rank J (at the end of "
             f"polishing) with the parameter count: supported when it rises (rho > 0, p < {cfg['alpha']}) for every "
             f"data kind and activation; not supported when it falls significantly for any; otherwise (or with a "
             f"single size) inconclusive. Not an identity: a larger net's J has more columns, but at its own end "
             f"point dead or saturated units and symmetric minima can leave them dependent; at a generic parameter "
             f"value rank J = min(rows, independent parameters), which the rows (n x d_out) cap")


def b3_check(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """Check B3: every layer's contribution to ‖P[J] y‖² is non-negative (true by construction)."""
    ok = judged(runs)
    relative = ok.min_layer_contribution / (2 * ok.zero_loss)  # relative to ‖y‖²
    collapsed = runs[runs.collapsed.astype(bool)]
    return make_check(
        "B3", "Each layer's contribution to ||P[J] y||^2 (adding layers from the output downward) is non-negative.",
        evidence,
        {"runs": len(ok), "min_relative_contribution": float(relative.min()) if len(ok) else None,
         "runs_below_tolerance": int((relative < -cfg["contribution_tol"]).sum()), "tolerance": cfg["contribution_tol"],
         "collapsed_runs": len(collapsed),
         "collapsed_min_relative_contribution": float((collapsed.min_layer_contribution
                                                       / (2 * collapsed.zero_loss)).min()) if len(collapsed) else None},
        bool(len(ok)) and bool((relative >= -cfg["contribution_tol"]).all()),
        rule=f"passes when, on every non-collapsed run, adding parameter blocks one layer at a time from the output "
             f"layer downward, each layer's increase of ||P y||^2 is >= -{cfg['contribution_tol']:g} ||y||^2 "
             f"(rounding): adding columns to J cannot shrink a projection, so this checks the Jacobian and "
             f"projection code, not the paper")


def b4_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """B4: at certified minima whose col(J) contains col([X, 1]), L is no worse than linear least squares."""
    ok = judged(runs)
    certified = ok[ok.certified.astype(bool)]
    covered = certified[certified.contains_linear.astype(bool)]
    beats = covered.loss <= covered.ols_loss * (1 + cfg["ols_tol"]) + cfg["loss_floor"] * covered.zero_loss
    # a J of full row rank spans everything, so L = LB = 0 there and the comparison is trivially true: only
    # runs whose J is rank-deficient test the claim
    telling = covered.rank_j < covered.jac_rows
    fraction = float(beats.mean()) if len(covered) else None
    collapsed, worse = runs[runs.collapsed.astype(bool)], ok[ok.loss > ok.ols_loss]
    if len(covered) and fraction < cfg["b4_fraction"]:
        verdict = "not supported"
    else:
        verdict = "supported" if telling.any() else "inconclusive"
    return make_claim(
        "B4", "At a local minimum whose col(J) contains col([X, 1]), L is at most the linear least-squares loss; "
        "compared also with random-feature least squares of equal feature count.",
        SOURCE, evidence,
        {"certified_runs": len(certified), "certified_containing_linear": len(covered),
         "containing_with_rank_deficient_j": int(telling.sum()), "fraction_at_or_below_ols": fraction,
         "all_runs_fraction_below_ols": float((ok.loss <= ok.ols_loss).mean()) if len(ok) else None,
         "all_runs_fraction_below_random_features": float((ok.loss <= ok.rf_loss).mean()) if len(ok) else None,
         "certified_fraction_below_random_features": float((certified.loss <= certified.rf_loss).mean())
         if len(certified) else None,
         # the failure mode of narrow ReLU nets: (partly) dead minima worse than linear regression
         "not_collapsed_worse_than_ols": [{"data": r.data, "activation": r.activation, "depth": int(r.depth),
                                           "width": int(r.width), "seed": int(r.seed), "loss": float(r.loss),
                                           "dead_fraction_max": float(r.dead_fraction_max)}
                                          for r in worse.itertuples()],
         "collapsed_runs": len(collapsed), "collapsed_worse_than_ols": int((collapsed.loss > collapsed.ols_loss).sum()),
         "ols_loss_by_data": runs.groupby("data").ols_loss.first().to_dict()},
        verdict, reconstructed=True,
        rule=f"among certified, non-collapsed runs whose col(J) contains col([X, 1] (x) I) (largest relative "
             f"residual <= {cfg['contain_tol']:g}): not supported when fewer than {cfg['b4_fraction']:.0%} have "
             f"L <= OLS x (1 + {cfg['ols_tol']:g}) (+ {cfg['loss_floor']:g} x zero loss); otherwise supported if at "
             f"least one of them has a rank-deficient J (with J of full row rank, L = LB = 0 and the comparison is "
             f"trivial), else inconclusive; the random-feature comparison and the (partly) dead runs are reported, "
             f"not judged")


def judge(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> list[dict[str, Any]]:
    """Claims B1, B4, B5 and checks B2, B3 from the study's runs."""
    return [b1_claim(runs, cfg, evidence), b2_check(runs, cfg, evidence), b3_check(runs, cfg, evidence),
            b4_claim(runs, cfg, evidence), b5_claim(runs, cfg, evidence)]
