"""Per-data-set training augmentations, applied per sample to a whole batch and driven by an explicit generator.

Why not torchvision.transforms.v2 directly: v2 draws one set of random parameters per call, so on a batched
tensor every image gets the same crop; calling it per image would loop in Python over every sample of every
step. The batched ops below keep v2's semantics (zero padding then a uniformly placed crop, a flip with
probability 1/2, an affine map with uniform angle and scale and nearest-neighbour sampling) per sample.

Drawing and applying are apart: `draw` takes an iteration's random parameters from a torch.Generator on the
CPU (so every device gets the same numbers, and an iteration's augmentation depends only on its seed), and
`apply` uses them on the batch's device. The training loop draws a whole epoch's parameters at once and moves
them to the device in one copy, then augments the whole epoch there in one call, so a step never waits on the host.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from globalmin.datasets import Augmentation, facts
from globalmin.runinfo import UserError


def draw(spec: Augmentation, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The random parameters of `n` samples' augmentation, drawn on the CPU in a fixed order."""
    params: dict[str, torch.Tensor] = {}
    if spec.crop_pad:
        params["oy"] = torch.randint(0, 2 * spec.crop_pad + 1, (n,), generator=gen)
        params["ox"] = torch.randint(0, 2 * spec.crop_pad + 1, (n,), generator=gen)
    if spec.hflip:
        params["flip"] = torch.rand(n, generator=gen) < 0.5
    if spec.degrees or spec.scale != (1.0, 1.0):
        params["angle"] = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.radians(spec.degrees)
        params["factor"] = spec.scale[0] + torch.rand(n, generator=gen, dtype=torch.float64) * (spec.scale[1]
                                                                                               - spec.scale[0])
    return params


def crop(x: torch.Tensor, pad: int, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
    """Zero-pad by `pad` and crop back to the original size at per-sample offsets (oy, ox)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def hflip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Flip the samples where `flip` is true left-right."""
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def affine(x: torch.Tensor, angle: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Rotate by `angle` (radians) and scale by `factor` about the centre, nearest sampling, zero fill."""
    # affine_grid maps output to input coordinates, so the matrix is the inverse of rotate-then-scale.
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def apply(x: torch.Tensor, spec: Augmentation, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Augment a float batch in [0, 1] with drawn parameters (on x's device, one row per sample)."""
    if "oy" in params:
        x = crop(x, spec.crop_pad, params["oy"], params["ox"])
    if "flip" in params:
        x = hflip(x, params["flip"])
    if "angle" in params:
        x = affine(x, params["angle"], params["factor"])
    return x


def augment(x: torch.Tensor, spec: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Draw and apply a data set's augmentation to a float batch in [0, 1]."""
    params = draw(spec, len(x), gen)
    return apply(x, spec, {k: v.to(x.device) for k, v in params.items()})


def spec_for(data: Any) -> Augmentation:
    """The augmentation of a prepared data set: the one its file records (every file prepared by this version; a
    user's data set's comes from its config), else the data-set facts table's for its name."""
    recorded = getattr(data, "meta", {}).get("augmentation")
    if recorded:
        return Augmentation(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()})
    try:
        return facts(data if isinstance(data, str) else data.name).augmentation
    except KeyError as err:
        raise UserError(err.args[0]) from err
