"""Stage `beyond_ntk`: how far do the Recipe's ResNet runs move from their initialisation? (claim R4)

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
init), as in the certificate at init. One job measures every run: the runs of one seed share their initial
network, so its kernel K_0 is computed once per seed and reused.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

from globalmin.claims import RECIPE, make_claim, write_fragment
from globalmin.models import WideHeadResNet, init_model, parameter_groups
from globalmin.runinfo import full_float32, write_text


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
    """The s x s trace kernel sum_c J_c J_c^T over all parameters (torch.func), one output class at a time.

    Each row of J_c is one point's gradient: in eval mode a point's output depends on its own input only, so the
    gradient of one point is vmapped over the points instead of back-propagating every basis vector through the
    whole batch (jacrev of the batch), which does s times the work to add exact zeros. Equal to that up to float32
    rounding (a convolution's weight gradient may sum in another order; tests/test_beyond_ntk.py), and faster at
    the default study's subset of 32 (benchmarks/results/study-kernels-cpu-2core.json, row trace_kernel)."""
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)
    for c in range(model.head.out_features):  # per class: memory s x P, not s x C x P
        def output(p: dict[str, torch.Tensor], xi: torch.Tensor, c: int = c) -> torch.Tensor:
            return functional_call(model, p, (xi[None],))[0, c]

        jac = vmap(grad(output), in_dims=(None, 0))(params, x)  # name -> (s, *parameter shape)
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


def movement(init: WideHeadResNet, final: WideHeadResNet, x: torch.Tensor,
             at_init: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """Weight movement, ReLU flip fraction and kernel change between init and final on inputs x; `at_init` is
    the initial network's (signs, kernel) when already computed."""
    signs0, k0 = at_init if at_init is not None else _signs_and_kernel(init, x)
    signs_t, k_t = _signs_and_kernel(final, x)
    cosine = float((k0 * k_t).sum() / (torch.linalg.matrix_norm(k0) * torch.linalg.matrix_norm(k_t)))
    return {**relative_movement(init, final), "flip_fraction": float((signs0 != signs_t).double().mean()),
            "kernel_change": float(torch.linalg.matrix_norm(k_t - k0) / torch.linalg.matrix_norm(k0)),
            "kernel_distance": 1.0 - cosine,  # scale-free: 1 - cosine of K_0 and K_T (0 for a kernel rescaled)
            "subset_size": len(x), "relu_units": signs0.shape[1]}


@full_float32()  # a fresh context per call
def measure_runs(data_paths: list[str], model_paths: list[str], subset: int) -> pd.DataFrame:
    """Movement of every finished run (its model.pt) from its own initialisation, on the first `subset` points of
    its data set; the initial network, its signs and kernel computed once per (data set, model config, seed),
    in full float32 on a GPU too (no TF32: kernels and sign flips as the CPU computes them)."""
    from globalmin import data as datamod
    from globalmin.runinfo import resolve_device

    prepared = {d.name: d for d in map(datamod.load, data_paths)}
    initial: dict[str, tuple[WideHeadResNet, tuple[torch.Tensor, torch.Tensor]]] = {}
    rows = []
    for path in model_paths:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        cfg, seed = saved["config"], saved["seed"]
        dataset, condition, aug, _, algorithm = saved["run_id"].split("/")
        data = datamod.for_run(prepared[dataset], saved.get("data_seed"))  # the run's own split and subset
        device = resolve_device(cfg["train"]["device"])  # the run's own device setting (auto: a GPU if present)
        x = data.x_train[:subset].float().to(device)
        # runs of one seed (and data seed: n, and with it m_H, can differ) share their init
        key = json.dumps([dataset, cfg["model"], seed, saved.get("data_seed")], sort_keys=True)
        if key not in initial:
            init = init_model(cfg["model"], data.x_train.shape[1], data.classes, data.n_train, seed, device)
            initial[key] = (init, _signs_and_kernel(init, x))
        init, at_init = initial[key]
        final = copy.deepcopy(init)
        final.load_state_dict(saved["model"])
        rows.append({"run_id": saved["run_id"], "dataset": dataset, "condition": condition, "augment": aug == "aug",
                     "seed": seed, "algorithm": "A(base)" if algorithm.startswith("recipe") else "base",
                     "n_train": data.n_train, "m_H": final.wide.out_features, "device": str(device),
                     **movement(init, final, x, at_init)})
    return pd.DataFrame(rows)


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Measure every run in inputs['models'] and set them beside the NTK study's MLPs (inputs['ntk_runs']) into
    outputs['out_dir']: runs.csv, comparison.csv/.html and claims.json (R4). cfg: subset, ntk_depth, threads."""
    out = Path(outputs["out_dir"])
    resnet = measure_runs(inputs["data"], inputs["models"], cfg["subset"])
    lazy = pd.read_csv(inputs["ntk_runs"])
    table = comparison(resnet, lazy, cfg["ntk_depth"])
    write_text(out / "runs.csv", resnet.to_csv(index=False))
    write_text(out / "comparison.csv", table.to_csv(index=False))
    write_text(out / "comparison.html", table.to_html(index=False, classes="table", border=0, float_format="%.3g",
                                                       na_rep="–"))
    claim = beyond_ntk_claim(resnet, lazy, cfg["ntk_depth"], [str(out / "runs.csv"), inputs["ntk_runs"]])
    write_fragment(out / "claims.json", "beyond_ntk", [claim])


SHOWN = ("relative_weight_movement", "flip_fraction", "kernel_change", "kernel_distance")
PRIMARY = "kernel_distance"  # scale-free: R4's verdict reads it; the other three are context


def comparison(resnet: pd.DataFrame, lazy: pd.DataFrame, depth: int) -> pd.DataFrame:
    """The lazy MLPs of the NTK width sweep (mean over seeds per width) beside the ResNet runs (median per setting)."""
    shown = [q for q in SHOWN if q in lazy and q in resnet]
    mlp = lazy[lazy["depth"] == depth].groupby("m", as_index=False)[shown].mean()
    mlp = mlp.assign(model=[f"NTK MLP, m = {m}" for m in mlp["m"]], kind="lazy MLP (ntk study)")
    nets = resnet.assign(setting=resnet["dataset"] + " " + resnet["condition"] + " "
                         + np.where(resnet["augment"], "aug", "noaug"))
    nets = nets.groupby(["algorithm", "setting"], as_index=False)[shown].median()
    nets = nets.assign(model="ResNet " + nets["algorithm"] + ", " + nets["setting"], kind="Recipe ResNet run")
    return pd.concat([mlp[["kind", "model", *shown]], nets[["kind", "model", *shown]]], ignore_index=True)


def beyond_ntk_claim(resnet: pd.DataFrame, lazy: pd.DataFrame, depth: int, evidence: list[str]) -> dict[str, Any]:
    """R4: the ResNet base runs' kernel moves more (scale-free) than every MLP of the NTK width sweep."""
    sweep = lazy[lazy["depth"] == depth].groupby("m")[list(SHOWN)].mean()
    base = resnet[(resnet["algorithm"] == "base") & (resnet["condition"] == "standard")]
    value = float(base[PRIMARY].median())
    narrowest, widest = float(sweep[PRIMARY].iloc[0]), float(sweep[PRIMARY].iloc[-1])
    least_lazy = float(sweep[PRIMARY].max())
    # the MLP width whose (log-log fitted) kernel distance equals the ResNets': how lazy the ResNets are
    slope, intercept = np.polyfit(np.log(sweep.index.to_numpy(float)), np.log(sweep[PRIMARY].to_numpy()), 1)
    equivalent_m = float(np.exp((np.log(value) - intercept) / slope)) if value > 0 and slope < 0 else None
    measured = {"primary": PRIMARY, "resnet_base_median": value, "base_runs": len(base),
                "mlp_by_width": {int(m): float(v) for m, v in sweep[PRIMARY].items()},
                "mlp_fit_slope": float(slope), "mlp_width_with_equal_value": equivalent_m,
                "context": {q: {"resnet_base_median": float(base[q].median()),
                                "mlp_narrowest": float(sweep[q].iloc[0]), "mlp_widest": float(sweep[q].iloc[-1])}
                            for q in SHOWN if q != PRIMARY}}
    verdict = ("inconclusive" if not len(base) else "supported" if value > least_lazy
               else "not supported" if value <= widest else "inconclusive")
    return make_claim(
        "R4", "Practical training (the Recipe's ResNet + batch norm runs) is outside the NTK regime: its tangent "
        "kernel changes more than that of lazy over-parameterised networks.", RECIPE, evidence, measured, verdict,
        reconstructed=True,
        rule=f"primary quantity: the scale-free kernel distance 1 - cos(K_0, K_T), median over the standard "
             f"condition's base runs, against the NTK study's MLPs (mean over seeds at each width m, depth {depth}). "
             f"Supported when it exceeds the value of every MLP width of the sweep (the ResNets move more than even "
             f"the least lazy MLP, here m = {int(sweep[PRIMARY].idxmax())}: {least_lazy:.3g}); not supported when it "
             f"is at most the widest MLP's ({widest:.3g}: as lazy as the lazy regime); inconclusive in between (as "
             f"lazy as some MLP of the sweep). Weight movement, flips and the relative kernel change are shown as "
             f"context; the relative change also counts a mere rescaling of the kernel, so it does not decide. "
             f"Narrowest MLP: {narrowest:.3g}")
