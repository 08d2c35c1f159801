"""Stage `local_minima`: local minima of deep nets against the projection bound of Kawaguchi, Huang & Kaelbling
(2019). The verdicts (claims B1, B4, B5, checks B2, B3) are in `local_minima_claims.py`.

Setting: a fully-connected student with H hidden layers of width w, biases, and a linear output layer with bias,
trained on the squared loss L(θ) = ½ Σ_i ‖f(x_i) − y_i‖², summed over points and outputs. Every loss in this
module (the bound, the baselines) uses that same normalisation. Because the output layer is linear, the stacked
outputs f(X) lie in the column space of the Jacobian J of the stacked outputs (n·d_out rows) with respect to all
parameters, so for every θ
    L(θ) ≥ LB(θ) = ½ ‖(I − P[J(θ)]) y‖²,
with equality at every differentiable critical point (there Jᵀ(f − y) = 0, so f = P y). Each run trains a seeded
student (a first-order phase, then Levenberg-Marquardt or L-BFGS polishing in float64), certifies
‖∇L‖ ≤ grad_tol or says it did not, and measures LB, rank J, per-layer contributions to ‖P y‖², linear and
random-feature least-squares baselines, and whether the net collapsed to a dead network. Uncertified and
collapsed runs are kept and reported.

The study's parts, one module each: its data (`local_minima_data`), the student with its loss, gradient and
Jacobian (`local_minima_net`), training toward a critical point (`local_minima_train`), what is measured at a
parameter value (`local_minima_bound`) and the verdicts (`local_minima_claims`); this module runs the grid.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from globalmin.claims import write_fragment
from globalmin.local_minima_bound import measure, ols_loss, random_feature_loss
from globalmin.local_minima_data import make_data
from globalmin.local_minima_net import build_student, parameters
from globalmin.local_minima_train import train
from globalmin.runinfo import derive_seed, write_text


def run_one(kind: str, x: torch.Tensor, y: torch.Tensor, activation: str, depth: int, width: int, seed: int,
            cfg: dict[str, Any]) -> dict[str, Any]:
    """Train one student and measure it after the first-order phase and after polishing; one self-describing row."""
    model = build_student(x.shape[1], width, depth, y.shape[1], activation,
                          derive_seed(seed, "lm-init", kind, activation, depth, width))
    trained = train(model, x, y, cfg)
    early = measure(model, trained["after_first"], x, y, cfg["rank_rtol"], cfg["contain_tol"])
    final = measure(model, parameters(model), x, y, cfg["rank_rtol"], cfg["contain_tol"])
    scale = 0.5 * float((y ** 2).sum())
    return {
        "data": kind, "n": len(x), "d": x.shape[1], "d_out": y.shape[1], "depth": depth, "width": width,
        "seed": seed, "activation": activation, "n_params": sum(p.numel() for p in model.parameters()),
        **final, "certified": final["grad_norm"] <= cfg["grad_tol"],
        "zero_loss": scale,  # ½‖y‖², the loss of the zero predictor: the scale of every tolerance
        "first_loss": early["loss"], "first_gap": early["gap"], "first_grad_norm": early["grad_norm"],
        "first_sigma_min_j": early["sigma_min_j"],
        "polish_iters_used": trained["polish_iters_used"],
    }


def run_study(cfg: dict[str, Any], prepared: dict[str, str]) -> pd.DataFrame:
    """Data kinds x activations x depths x widths x seeds, one row per run, with the OLS and random-feature
    baselines of the run's data (and width)."""
    rows = []
    for kind in cfg["data"]:
        x, y = make_data(kind, cfg, prepared)
        ols = ols_loss(x, y)
        for activation in cfg["activations"]:
            rf = {w: random_feature_loss(x, y, w, activation, cfg["data_seed"], cfg["rf_draws"])
                  for w in cfg["widths"]}
            for depth, width, seed in itertools.product(cfg["depths"], cfg["widths"], cfg["seeds"]):
                rows.append({**run_one(kind, x, y, activation, depth, width, seed, cfg),
                             "ols_loss": ols, "rf_loss": rf[width]})
    return pd.DataFrame(rows)


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """The study of cfg (the local_minima section) on inputs['data'] (prepared files of the image data kinds) into
    outputs['out_dir']: runs.csv, summary.csv/.html and claims.json."""
    from globalmin import local_minima_claims

    out = Path(outputs["out_dir"])
    prepared = {Path(p).stem: str(p) for p in inputs.get("data", [])}
    runs = run_study(cfg, prepared)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    table = local_minima_claims.summary_table(runs)
    write_text(out / "summary.csv", table.to_csv(index=False))
    write_text(out / "summary.html", table.to_html(index=False, classes="table", border=0, float_format="%.3g",
                                                   na_rep="–"))
    write_fragment(out / "claims.json", "local_minima",
                   local_minima_claims.judge(runs, cfg, [str(out / "runs.csv")]))
