"""Per-data-set training augmentations, applied per sample to a whole batch and driven by an explicit generator.

Why not torchvision.transforms.v2 directly: v2 draws one set of random parameters per call, so on a batched
tensor every image gets the same crop; calling it per image would loop in Python over every sample of every
step. The batched ops below keep v2's semantics (zero padding then a uniformly placed crop, a flip with
probability 1/2, an affine map with uniform angle and scale and nearest-neighbour sampling) per sample, and
take their randomness from a torch.Generator so that an iteration's augmentation depends only on its seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from globalmin.datasets import Augmentation, facts
from globalmin.runinfo import UserError


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad` and crop back to the original size at a uniform random offset per sample."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flip each sample left-right with probability 1/2."""
    flip = (torch.rand(len(x), generator=gen) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_affine(x: torch.Tensor, degrees: float, scale: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Rotate by U(-degrees, degrees) and scale by U(scale) about the centre, nearest sampling, zero fill."""
    n = len(x)
    angle = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.radians(degrees)
    factor = scale[0] + torch.rand(n, generator=gen, dtype=torch.float64) * (scale[1] - scale[0])
    # affine_grid maps output to input coordinates, so the matrix is the inverse of rotate-then-scale.
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype).to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def augment(x: torch.Tensor, spec: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Apply a data set's augmentation to a float batch in [0, 1]."""
    if spec.crop_pad:
        x = random_crop(x, spec.crop_pad, gen)
    if spec.hflip:
        x = random_hflip(x, gen)
    if spec.degrees or spec.scale != (1.0, 1.0):
        x = random_affine(x, spec.degrees, spec.scale, gen)
    return x


def spec_for(dataset: str) -> Augmentation:
    """The augmentation of `dataset`, from the data-set facts table."""
    try:
        return facts(dataset).augmentation
    except KeyError as err:
        raise UserError(err.args[0]) from err
