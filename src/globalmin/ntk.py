"""Stage `ntk`: the NTK (lazy) regime of Allen-Zhu, Li & Song (ICML 2019): does over-parameterised GD stay near
its init?

Their setting: inputs on the unit sphere with a constant coordinate, h_0 = relu(A x), h_l = relu(W_l h_{l-1}),
y = B h_L, entries N(0, 2/m) for A and W_l and N(0, 1/d_out) for B, only W_1..W_L trained, summed squared loss
F = 1/2 sum_i ||y_i - f(x_i)||^2, full-batch GD with eta = c / lambda_max(K_0). The paper is theoretical, so
this study measures the predicted *scalings* in the width m, not its constants (claims A1-A5, A8). The
statements A1-A5 test are reconstructions of the theorems (docs/science.md), so their claims say so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats
from torch.func import jacrev

from globalmin.claims import make_claim, write_fragment
from globalmin.runinfo import derive_seed, write_text

SOURCE = "Allen-Zhu, Li & Song, A Convergence Theory for Deep Learning via Over-Parameterization (ICML 2019)"


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """The sweeps of cfg (the ntk section) and A8 on inputs['data'] (prepared digits) into outputs['out_dir']:
    runs.csv, curves.csv, memorisation.csv and claims.json."""
    from globalmin import data as datamod

    out = Path(outputs["out_dir"])
    runs, curves = run_study(cfg)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    write_text(out / "curves.csv", curves.to_csv(index=False))
    digits = datamod.load(inputs["data"])
    memorised = run_memorisation(cfg["memorisation"], digits.x_train.flatten(1).double(), digits.y_train)
    write_text(out / "memorisation.csv", memorised.to_csv(index=False))
    found = ntk_claims(runs, cfg, [str(out / "runs.csv")])
    found.append(memorisation_claim(memorised, cfg["memorisation"], [str(out / "memorisation.csv")]))
    write_fragment(out / "claims.json", "ntk", found)


def sphere_inputs(n: int, d: int, seed: int) -> torch.Tensor:
    """n points with norm 1 whose last coordinate is the constant 1/sqrt(2) (the paper's non-degenerate inputs)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "ntk-x"))
    z = torch.randn(n, d - 1, generator=gen, dtype=torch.float64)
    z = z / z.norm(dim=1, keepdim=True) / math.sqrt(2.0)
    return torch.cat([z, torch.full((n, 1), 1 / math.sqrt(2.0), dtype=torch.float64)], dim=1)


def init_network(d: int, m: int, depth: int, d_out: int, seed: int) -> dict[str, torch.Tensor]:
    """A (m x d), W_1..W_L (m x m) with N(0, 2/m) entries and B (d_out x m) with N(0, 1/d_out), float64."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "ntk-init"))
    params = {"A": torch.randn(m, d, generator=gen, dtype=torch.float64) * math.sqrt(2 / m)}
    for layer in range(1, depth + 1):
        params[f"W{layer}"] = torch.randn(m, m, generator=gen, dtype=torch.float64) * math.sqrt(2 / m)
    params["B"] = torch.randn(d_out, m, generator=gen, dtype=torch.float64) * math.sqrt(1 / d_out)
    return params


def forward(trained: dict[str, torch.Tensor], fixed: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Outputs (n x d_out)."""
    return hidden_layers(trained, fixed, x)[-1] @ fixed["B"].T


def hidden_layers(trained: dict[str, torch.Tensor], fixed: dict[str, torch.Tensor],
                  x: torch.Tensor) -> list[torch.Tensor]:
    """h_0 .. h_L of every input (n x m each): the inputs of W_1 .. W_L, then the input of B."""
    hidden = [torch.relu(x @ fixed["A"].T)]
    for layer in range(1, len(trained) + 1):
        hidden.append(torch.relu(hidden[-1] @ trained[f"W{layer}"].T))
    return hidden


def jacobian(trained: dict[str, torch.Tensor], fixed: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """J (n d_out x #trained weights): row i·d_out + o, the columns of W_1, W_2, ... each flattened row-major
    (torch.func.jacrev of the stacked outputs)."""
    blocks = jacrev(lambda p: forward(p, fixed, x).reshape(-1))(trained)
    return torch.cat([b.reshape(b.shape[0], -1) for b in blocks.values()], dim=1)


def empirical_ntk(trained: dict[str, torch.Tensor], fixed: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """K = J J^T over the trained weights, shape (n d_out) x (n d_out)."""
    jac = jacobian(trained, fixed, x)
    return jac @ jac.T


def ntk_closed_form_one_layer(trained: dict[str, torch.Tensor], fixed: dict[str, torch.Tensor],
                              x: torch.Tensor) -> torch.Tensor:
    """The exact NTK of the depth-1 net with d_out = 1: K_ij = <h0_i, h0_j> sum_k B_k^2 1[z_ik > 0] 1[z_jk > 0]."""
    h0 = torch.relu(x @ fixed["A"].T)
    active = (h0 @ trained["W1"].T > 0).to(torch.float64) * fixed["B"][0]
    return (h0 @ h0.T) * (active @ active.T)


def movement(init: dict[str, torch.Tensor], final: dict[str, torch.Tensor], fixed: dict[str, torch.Tensor],
             x: torch.Tensor, k0: torch.Tensor | None = None) -> dict[str, float]:
    """How far training moved: weight distance per layer and in total, ReLU sign flips, relative kernel change."""
    # a trained layer's unit is on where its pre-activation is positive, i.e. where its relu output h_l is
    h0, h_t = hidden_layers(init, fixed, x)[1:], hidden_layers(final, fixed, x)[1:]
    flips = sum(int(((a > 0) != (b > 0)).sum()) for a, b in zip(h0, h_t)) / sum(a.numel() for a in h0)
    k0 = empirical_ntk(init, fixed, x) if k0 is None else k0
    k_t = empirical_ntk(final, fixed, x)
    per_layer = {k: float((final[k] - init[k]).norm()) for k in final}
    total = float(np.sqrt(sum(v ** 2 for v in per_layer.values())))
    return {"weight_movement": total, "weight_movement_max_layer": max(per_layer.values()),
            "relative_weight_movement": total / float(np.sqrt(sum(float(init[k].norm()) ** 2 for k in init))),
            "flip_fraction": flips, "kernel_change": float((k_t - k0).norm() / k0.norm()),
            "kernel_distance": 1.0 - float((k0 * k_t).sum() / (k0.norm() * k_t.norm()))}  # scale-free


def train_gd(x: torch.Tensor, y: torch.Tensor, m: int, depth: int, seed: int, c: float, steps: int) -> dict[str, Any]:
    """Full-batch GD on the trained layers; returns the run's metrics and its loss curve."""
    params = init_network(x.shape[1], m, depth, y.shape[1], seed)
    fixed = {"A": params.pop("A"), "B": params.pop("B")}
    init = {k: v.clone() for k, v in params.items()}
    k0 = empirical_ntk(params, fixed, x)
    eig0 = torch.linalg.eigvalsh(k0)
    lam_min, lam_max = float(eig0[0]), float(eig0[-1])
    eta = c / lam_max
    losses, pl_ratios = [], []
    trained = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.SGD(trained.values(), lr=eta)
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * ((forward(trained, fixed, x) - y) ** 2).sum()
        loss.backward()
        losses.append(loss.item())
        pl_ratios.append(sum((p.grad ** 2).sum() for p in trained.values()).item() / losses[-1])
        opt.step()
    final = {k: v.detach() for k, v in trained.items()}
    losses.append(float(0.5 * ((forward(final, fixed, x) - y) ** 2).sum()))
    half = len(losses) // 2
    fit = stats.linregress(np.arange(half, len(losses)), np.log(losses[half:]))
    return {
        "m": m, "depth": depth, "seed": seed, "eta": eta, "lambda_min_K0": lam_min, "lambda_max_K0": lam_max,
        "predicted_log_rate": -2 * eta * lam_min, "measured_log_rate": float(fit.slope),
        "log_loss_r2": float(fit.rvalue ** 2), "loss_ratio": losses[-1] / losses[0],
        **movement(init, final, fixed, x, k0),
        "pl_min": float(min(pl_ratios)), "pl_bound": 2 * lam_min,
    }, losses


def run_study(cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The width sweep (at cfg depth) and the depth sweep (at cfg depth_sweep_width): runs and loss curves."""
    runs, curves = [], []
    combos = [(m, cfg["depth"]) for m in cfg["widths"]] + [(cfg["depth_sweep_width"], d) for d in cfg["depths"]
                                                             if d != cfg["depth"] or cfg["depth_sweep_width"]
                                                             not in cfg["widths"]]
    for seed in cfg["seeds"]:
        x = sphere_inputs(cfg["n"], cfg["d"], seed)
        gen = torch.Generator().manual_seed(derive_seed(seed, "ntk-y"))
        y = torch.randn(cfg["n"], cfg["d_out"], generator=gen, dtype=torch.float64)
        for m, depth in combos:
            torch.manual_seed(derive_seed(seed, "ntk", m, depth))
            metrics, losses = train_gd(x, y, m, depth, seed, cfg["c"], cfg["steps"])
            runs.append(metrics)
            curves.append(pd.DataFrame({"m": m, "depth": depth, "seed": seed, "step": range(len(losses)),
                                        "loss": losses}))
    return pd.DataFrame(runs), pd.concat(curves, ignore_index=True)


def digits_on_sphere(images: torch.Tensor, labels: torch.Tensor, n: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n of the given real digits (flattened, centred, scaled onto the sphere with the constant coordinate) and
    their labels."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "a8-data"))
    idx = torch.randperm(len(labels), generator=gen)[:n]
    z = images[idx].to(torch.float64)
    z = z - z.mean(0)
    x = torch.cat([z / z.norm(dim=1, keepdim=True) / math.sqrt(2.0),
                   torch.full((n, 1), 1 / math.sqrt(2.0), dtype=torch.float64)], dim=1)
    return x, labels[idx]


def memorise(x: torch.Tensor, labels: torch.Tensor, m: int, depth: int, seed: int, lr: float,
             max_steps: int) -> dict[str, Any]:
    """Full-batch GD on cross-entropy in the paper's parameterisation until 100% training accuracy (A8)."""
    classes = int(labels.max()) + 1
    params = init_network(x.shape[1], m, depth, classes, seed)
    fixed = {"A": params.pop("A"), "B": params.pop("B")}
    trained = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.SGD(trained.values(), lr=lr)
    steps_to_fit = None
    for step in range(max_steps + 1):
        opt.zero_grad()
        out = forward(trained, fixed, x)
        if bool((out.argmax(1) == labels).all()):
            steps_to_fit = step
            break
        if step == max_steps:
            break
        F.cross_entropy(out, labels).backward()  # the mean over the points
        opt.step()
    # every way out of the loop is a break taken before the weights are updated, so `out` holds the final logits
    out = out.detach()
    accuracy = float((out.argmax(1) == labels).double().mean())
    loss = float(F.cross_entropy(out, labels))
    return {"m": m, "seed": seed, "steps_to_100": steps_to_fit, "train_accuracy": accuracy, "final_loss": loss}


def run_memorisation(cfg: dict[str, Any], images: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """A8: true and randomly permuted digit labels at each width; one row per run."""
    rows = []
    for seed in cfg["seeds"]:
        x, labels_n = digits_on_sphere(images, labels, cfg["n"], seed)
        gen = torch.Generator().manual_seed(derive_seed(seed, "a8-shuffle"))
        for kind, y in (("true", labels_n), ("random", labels_n[torch.randperm(len(labels_n), generator=gen)])):
            for m in cfg["widths"]:
                rows.append({"labels": kind, **memorise(x, y, m, cfg["depth"], seed, cfg["lr"], cfg["max_steps"])})
    return pd.DataFrame(rows)


def width_slope(runs: pd.DataFrame, column: str, depth: int) -> dict[str, float]:
    """Log-log slope of `column` against m (all seeds), with its 95% confidence interval."""
    sub = runs[(runs.depth == depth) & (runs[column] > 0)]
    fit = stats.linregress(np.log(sub.m), np.log(sub[column]))
    half = float(stats.t.ppf(0.975, len(sub) - 2) * fit.stderr) if len(sub) > 2 else float("inf")
    return {"slope": float(fit.slope), "ci95": [float(fit.slope) - half, float(fit.slope) + half], "points": len(sub)}


def ntk_claims(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> list[dict[str, Any]]:
    """Verdicts for A1 (linear rate), A2 (weights), A3 (flips), A4 (kernel), A5 (gradient bound)."""
    band = cfg["slope_band"]
    sweep = runs[runs.depth == cfg["depth"]]
    widest = sweep[sweep.m == sweep.m.max()]
    ratio = (widest.measured_log_rate / widest.predicted_log_rate)
    a1_ok = bool((widest.log_loss_r2 > 0.99).all() and (abs(ratio - 1) <= cfg["rate_tolerance"]).all())
    claims = [make_claim(
        "A1", "GD converges linearly: log F(t) is a straight line whose slope approaches -2 eta lambda_min(K_0) "
        "as m grows.", SOURCE, evidence,
        {"widest_m": int(widest.m.max()), "rate_ratio_at_widest": ratio.round(4).tolist(),
         "r2_at_widest": widest.log_loss_r2.round(5).tolist(),
         "rate_ratio_by_m": sweep.groupby("m").apply(
             lambda g: float((g.measured_log_rate / g.predicted_log_rate).mean()), include_groups=False).to_dict()},
        "supported" if a1_ok else "not supported", reconstructed=True,
        rule=f"supported when, at the largest width, the second half of every loss curve is log-linear "
             f"(R^2 > 0.99) with slope within ±{cfg['rate_tolerance']:.0%} of -2 eta lambda_min(K_0) (the rate is "
             f"a reconstruction of the theorem's, docs/science.md)")]
    for cid, column, statement, predicted in [
        ("A2", "weight_movement", "Weights stay near init: ||W_T - W_0||_F shrinks like m^(-1/2).", -0.5),
        ("A4", "kernel_change", "The kernel stays near K_0: ||K_T - K_0||_F / ||K_0||_F shrinks like m^(-1/2).", -0.5),
    ]:
        # The theorems bound these quantities by O(m^(-1/2)): a bound holds when the quantity shrinks at least
        # that fast, so the verdict asks for a slope at or below the prediction (plus the band's tolerance).
        fit = width_slope(runs, column, cfg["depth"])
        relation = ("as predicted" if abs(fit["slope"] - predicted) <= band else
                    "faster than predicted" if fit["slope"] < predicted else "slower than predicted")
        claims.append(make_claim(cid, statement, SOURCE, evidence,
                                 {**fit, "predicted_slope": predicted, "band": band, "relation": relation},
                                 "supported" if fit["slope"] <= predicted + band else "not supported",
                                 reconstructed=True,
                                 rule=f"the (reconstructed) theorem is an upper bound O(m^{predicted}): supported "
                                      f"when the fitted log-log slope against m is at most {predicted + band} "
                                      f"(prediction {predicted} plus a band of {band}); 'relation' says whether it "
                                      f"is within ±{band} of the prediction or faster"))
    flips = width_slope(runs, "flip_fraction", cfg["depth"])
    claims.append(make_claim(
        "A3", "Few activation patterns change: the fraction of flipped ReLU signs shrinks with m (bound m^(-1/3)).",
        SOURCE, evidence, {**flips, "bound_slope": -1 / 3},
        "supported" if flips["ci95"][1] < 0 else "not supported", reconstructed=True,
        rule="supported when the 95% confidence interval of the log-log slope of the flip fraction against m lies "
             "below 0 (the reconstructed theorem bounds it by m^(-1/3); the observed rate may be faster)"))
    claims.append(gradient_bound_claim(runs, widest, evidence))
    return sorted(claims, key=lambda c: c["id"])


def gradient_bound_claim(runs: pd.DataFrame, widest: pd.DataFrame, evidence: list[str]) -> dict[str, Any]:
    """A5: along every run at the largest width, ||grad F||^2 / F >= 2 lambda_min(K_0), unscaled."""
    ratio = runs.pl_min / runs.pl_bound
    at_widest = widest.pl_min / widest.pl_bound
    return make_claim(
        "A5", "No bad critical points near init: ||grad F||^2 / F stays above 2 lambda_min(K_0) along the run.",
        SOURCE, evidence,
        {"min_ratio_at_widest": float(at_widest.min()), "runs_at_widest": len(widest),
         "runs_below_bound_at_widest": int((at_widest < 1).sum()),
         "min_ratio_by_m": runs.assign(r=ratio).groupby("m").r.min().round(4).to_dict(),
         "runs_below_bound_all_widths": int((ratio < 1).sum()), "runs": len(runs)},
        "supported" if len(widest) and (at_widest >= 1).all() else "not supported", reconstructed=True,
        rule="supported when, in every run at the largest width of the width sweep (where the theorem's "
             "over-parameterisation is best met), min over steps of ||grad F||^2 / F is at least 2 lambda_min(K_0) "
             "(ratio >= 1, no slack); not supported otherwise. The bound 2 lambda_min(K_0) is a reconstruction: "
             "the theorem states a gradient lower bound with unspecified constants; the ratio at every width is shown")


def memorisation_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """A8: at the largest width, GD on cross-entropy reaches 100% training accuracy on true and random labels."""
    widest = runs[runs.m == runs.m.max()]
    by = runs.groupby(["labels", "m"]).agg(fitted=("train_accuracy", lambda a: int((a == 1.0).sum())),
                                           runs=("train_accuracy", "size"),
                                           median_steps=("steps_to_100", "median")).reset_index()
    return make_claim(
        "A8", "Over-parameterised nets trained by GD reach 100% training accuracy with cross-entropy, also on "
        "random labels.", SOURCE, evidence,
        {"n": cfg["n"], "depth": cfg["depth"], "max_steps": cfg["max_steps"], "widest_m": int(runs.m.max()),
         "by_labels_and_width": by.to_dict("records")},
        "supported" if len(widest) and (widest.train_accuracy == 1.0).all() else "not supported",
        reconstructed=False,
        rule=f"supported when every run at the largest width, with true and with randomly permuted labels, "
             f"reaches 100% training accuracy on {cfg['n']} digits within {cfg['max_steps']} full-batch GD steps; "
             f"not supported otherwise")
