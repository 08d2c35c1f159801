"""The local-minimum study's Jacobian in its library form, torch.func's vmap(jacrev) of one point, with the column
blocks of `local_minima_net.jacobian`: what that written-out twin is timed against.

Run as a script, it is a `globalmin` command with this form in the twin's place in every module that calls it:
`python benchmarks/torch_func_jacobian.py local-minima --config ... --out-dir ...` (benchmarks/study_kernels.py
--twins times the study's job so). Only torch and the study's modules are imported, as in the job itself.
"""

from __future__ import annotations

import sys

import torch
from torch.func import functional_call, jacrev, vmap

from globalmin import local_minima_bound, local_minima_net, local_minima_train


def jacobian(model: local_minima_net.Student, params: dict[str, torch.Tensor],
             x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, slice]]]:
    """J (n·d_out x #params) by vmap(jacrev) of one point, and each layer's column block (weight and bias)."""
    def one_point(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (xi[None],)).reshape(-1)

    blocks = vmap(jacrev(one_point), in_dims=(None, 0))(params, x)  # name -> (n, d_out, *parameter shape)
    rows = x.shape[0] * model.out.out_features
    cols = [blocks[name].reshape(rows, -1) for name in params]
    layers, start = [], 0
    for name in local_minima_net.layer_names(model):
        width = blocks[f"{name}.weight"][0, 0].numel() + blocks[f"{name}.bias"][0, 0].numel()
        layers.append((name, slice(start, start + width)))
        start += width
    return torch.cat(cols, dim=1), layers


def use_library_jacobian() -> None:
    """Put `jacobian` in the written-out twin's place wherever the study calls it (polishing and measuring)."""
    for module in (local_minima_net, local_minima_train, local_minima_bound):
        module.jacobian = jacobian


if __name__ == "__main__":
    from globalmin.cli import main

    use_library_jacobian()
    sys.exit(main())
