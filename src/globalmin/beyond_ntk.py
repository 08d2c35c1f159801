"""Beyond the NTK regime: how far do the Recipe's ResNet runs move from their initialisation?

The lazy (NTK) regime of Allen-Zhu, Li & Song is one where training barely moves the weights, the ReLU
activation pattern and the tangent kernel (claims A2-A4, measured on their MLPs by `ntk`). The Recipe paper's
point is that practical training is not lazy. This module measures the same three quantities on a trained
ResNet against the same network at its initialisation (rebuilt exactly from the run's seed):
- relative weight movement ||W_T - W_0||_F / ||W_0||_F, in total and per group (body, wide layer, head);
- the fraction of ReLU signs flipped on a fixed subset of training points (every ReLU of the PreAct ResNet
  reads a batch-norm output, so the signs of those outputs are its activation pattern);
- the relative change of the empirical tangent kernel ||K_T - K_0||_F / ||K_0||_F on the same subset, with
  K the trace kernel K_ij = sum_c <d f_c(x_i) / d theta, d f_c(x_j) / d theta> over all trained parameters,
  and, since that change also counts a mere rescaling, the scale-free kernel distance 1 - cos(K_0, K_T).
Both networks are evaluated in eval mode, batch norm with its running statistics (the initial statistics at
init), as in the certificate at init.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.func import functional_call, jacrev

from globalmin.models import WideHeadResNet, parameter_groups


def relu_signs(model: WideHeadResNet, x: torch.Tensor) -> torch.Tensor:
    """The sign pattern (> 0) of every ReLU input on x: the outputs of all batch-norm layers, flattened."""
    signs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: signs.append((out > 0).flatten(1)))
             for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(signs, dim=1)


def trace_ntk(model: WideHeadResNet, x: torch.Tensor) -> torch.Tensor:
    """The s x s trace kernel sum_c J_c J_c^T over all parameters (torch.func), one output class at a time."""
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)
    for c in range(model.head.out_features):  # per class: memory s x P, not s x C x P
        jac = jacrev(lambda p: functional_call(model, p, (x,))[:, c])(params)
        flat = torch.cat([j.reshape(len(x), -1) for j in jac.values()], dim=1).to(torch.float64)
        kernel += flat @ flat.T
    return kernel


@torch.no_grad()
def relative_movement(init: WideHeadResNet, final: WideHeadResNet) -> dict[str, float]:
    """||W_T - W_0||_F / ||W_0||_F over all parameters and per group (body, wide, head)."""
    before, after = dict(init.named_parameters()), dict(final.named_parameters())
    groups = {"all": list(before), **parameter_groups(final)}
    out = {}
    for group, names in groups.items():
        moved = sum(float((after[n] - before[n]).double().square().sum()) for n in names)
        size = sum(float(before[n].double().square().sum()) for n in names)
        out[f"relative_weight_movement{'' if group == 'all' else '_' + group}"] = float(np.sqrt(moved / size))
    return out


@torch.no_grad()
def _signs_and_kernel(model: WideHeadResNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        kernel = trace_ntk(model, x)
    return relu_signs(model, x), kernel


def movement(init: WideHeadResNet, final: WideHeadResNet, x: torch.Tensor) -> dict[str, Any]:
    """Weight movement, ReLU flip fraction and relative kernel change between init and final on inputs x."""
    signs0, k0 = _signs_and_kernel(init, x)
    signs_t, k_t = _signs_and_kernel(final, x)
    cosine = float((k0 * k_t).sum() / (torch.linalg.matrix_norm(k0) * torch.linalg.matrix_norm(k_t)))
    return {**relative_movement(init, final), "flip_fraction": float((signs0 != signs_t).double().mean()),
            "kernel_change": float(torch.linalg.matrix_norm(k_t - k0) / torch.linalg.matrix_norm(k0)),
            "kernel_distance": 1.0 - cosine,  # scale-free: 1 - cosine of K_0 and K_T (0 for a kernel rescaled)
            "subset_size": len(x), "relu_units": signs0.shape[1]}


def measure_run(data_path: str | Path, model_path: str | Path, subset: int) -> dict[str, Any]:
    """Movement of one finished run (its model.pt) from its own initialisation, on the first `subset` points."""
    from globalmin import data as datamod
    from globalmin.runinfo import resolve_device
    from globalmin.train import init_base

    saved = torch.load(model_path, map_location="cpu", weights_only=False)
    cfg = saved["config"]
    device = resolve_device(cfg["train"]["device"])  # the run's own device setting (auto: a GPU if present)
    data = datamod.load(data_path)
    init, _ = init_base(data, saved["seed"], cfg["model"], cfg["train"], device)
    final = copy.deepcopy(init)
    final.load_state_dict(saved["model"])
    x = data.x_train[:subset].float().to(device)
    dataset, aug, seed, algorithm = saved["run_id"].split("/")
    return {"run_id": saved["run_id"], "dataset": dataset, "augment": aug == "aug", "seed": saved["seed"],
            "algorithm": "A(base)" if algorithm.startswith("recipe") else "base", "n_train": data.n_train,
            "m_H": final.wide.out_features, "device": str(device), **movement(init, final, x)}

QUANTITIES = ("relative_weight_movement", "flip_fraction", "kernel_change")  # the R4 verdict reads these
SHOWN = QUANTITIES + ("kernel_distance",)  # and the table adds the scale-free kernel distance


def comparison(resnet: pd.DataFrame, lazy: pd.DataFrame, depth: int) -> pd.DataFrame:
    """The lazy MLPs of the NTK width sweep (mean over seeds per width) beside the ResNet runs (median per setting)."""
    shown = [q for q in SHOWN if q in lazy and q in resnet]
    mlp = lazy[lazy["depth"] == depth].groupby("m", as_index=False)[shown].mean()
    mlp = mlp.assign(model=[f"NTK MLP, m = {m}" for m in mlp["m"]], kind="lazy MLP (ntk study)")
    nets = resnet.assign(setting=resnet["dataset"] + " " + np.where(resnet["augment"], "aug", "noaug"))
    nets = nets.groupby(["algorithm", "setting"], as_index=False)[shown].median()
    nets = nets.assign(model="ResNet " + nets["algorithm"] + ", " + nets["setting"], kind="Recipe ResNet run")
    return pd.concat([mlp[["kind", "model", *shown]], nets[["kind", "model", *shown]]], ignore_index=True)


def beyond_ntk_claim(resnet: pd.DataFrame, lazy: pd.DataFrame, depth: int, factor: float,
                     evidence: list[str]) -> dict[str, Any]:
    """R4: the ResNet runs move weights, ReLU pattern and kernel by at least `factor` x the widest lazy MLP."""
    from globalmin.claims import RECIPE, make_claim

    widest = lazy[(lazy["depth"] == depth) & (lazy["m"] == lazy.loc[lazy["depth"] == depth, "m"].max())]
    base = resnet[resnet["algorithm"] == "base"]
    measured = {"widest_mlp_m": int(widest["m"].iloc[0]), "base_runs": len(base)}
    ratios = []
    for q in QUANTITIES:
        lazy_value, net_value = float(widest[q].mean()), float(base[q].median())
        ratio = net_value / lazy_value if lazy_value > 0 else float("inf")
        measured[q] = {"lazy_mlp_mean": lazy_value, "resnet_base_median": net_value, "ratio": ratio,
                       "resnet_base_min": float(base[q].min())}
        ratios.append(ratio)
    if "kernel_distance" in widest and "kernel_distance" in base:  # context: how much of the change is scale
        measured["kernel_distance"] = {"lazy_mlp_mean": float(widest["kernel_distance"].mean()),
                                       "resnet_base_median": float(base["kernel_distance"].median())}
    verdict = "supported" if min(ratios) >= factor else ("not supported" if max(ratios) < 1 else "inconclusive")
    return make_claim(
        "R4", "Practical training (the Recipe's ResNet + batch norm runs) is outside the NTK regime: it moves the "
        "weights, the ReLU activation pattern and the tangent kernel far more than lazy over-parameterised MLPs.",
        RECIPE, evidence, measured, verdict, reconstructed=True,
        rule=f"supported if, for relative weight movement, ReLU flip fraction and relative kernel change alike, the "
             f"median over base runs is at least {factor:g} x the mean of the widest NTK-study MLP "
             f"(m = {measured['widest_mlp_m']}, depth {depth}); not supported if all three are below the widest "
             f"MLP's own value (ratio < 1); inconclusive otherwise")
