"""The local-minimum study's data: a seeded random teacher, or real images from the pipeline's prepared files,
fixed by the study's data_seed (its seeds vary only the students' initialisation)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from globalmin.runinfo import UserError, derive_seed


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Columns with zero mean and unit variance (constant columns are only centred)."""
    sd = x.std(dim=0)
    return (x - x.mean(dim=0)) / torch.where(sd > 0, sd, torch.ones_like(sd))


def project(x: torch.Tensor, d: int | None, seed: int) -> torch.Tensor:
    """A fixed seeded Gaussian projection to d dimensions (none when d is null or not below the input size)."""
    if d is None or d >= x.shape[1]:
        return x
    gen = torch.Generator().manual_seed(derive_seed(seed, "lm-projection", x.shape[1], d))
    return x @ torch.randn(x.shape[1], d, generator=gen, dtype=torch.float64) / math.sqrt(x.shape[1])


def teacher_data(n: int, d: int, d_out: int, width: int, noise: float,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n Gaussian inputs in d dims; standardised targets of a fixed random one-hidden-layer tanh teacher plus
    Gaussian noise of `noise` times the teacher's output standard deviation."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "lm-teacher"))
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    w1 = torch.randn(width, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    b1 = torch.randn(width, generator=gen, dtype=torch.float64) * 0.5
    w2 = torch.randn(d_out, width, generator=gen, dtype=torch.float64) / math.sqrt(width)
    # tanh keeps the teacher smooth and genuinely nonlinear, so no student size reproduces it by construction;
    # the noise makes small students' minima strictly positive while large ones can still interpolate
    clean = standardise(torch.tanh(x @ w1.T + b1) @ w2.T)
    return x, standardise(clean + noise * torch.randn(n, d_out, generator=gen, dtype=torch.float64))


def image_data(kind: str, n: int, d: int | None, classes: int, seed: int,
               prepared: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """n images of the first `classes` classes, flattened, projected to d dims, standardised; one-hot targets.

    One-hot over a few classes keeps the Jacobian at n·classes rows (all ten would multiply it by ten) while
    the targets stay real labels. The images come from the pipeline's prepared file of data set `kind` (its
    training split); `prepared` maps data set names to those files.
    """
    from globalmin import data

    if kind not in prepared:
        raise UserError(f"local_minima.data lists {kind}, but no prepared file of {kind} was given "
                        f"(--data data/prepared/{kind}.pt)")
    images = data.load(prepared[kind])
    x_all, labels = images.x_train.flatten(1).double(), images.y_train
    pool = torch.nonzero(labels < classes).flatten()
    if len(pool) < n:
        raise UserError(f"local_minima: {kind} has {len(pool)} points of classes 0..{classes - 1}, fewer than n = {n}")
    gen = torch.Generator().manual_seed(derive_seed(seed, "lm-subset", kind))
    idx = pool[torch.randperm(len(pool), generator=gen)[:n]]
    x = standardise(project(x_all[idx], d, seed))
    return x, nn.functional.one_hot(labels[idx], classes).double()


def make_data(kind: str, cfg: dict[str, Any], prepared: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (x, y) of one data kind, fixed by cfg data_seed (the seeds of the study vary only the init)."""
    if kind == "teacher":
        return teacher_data(cfg["n"], cfg["d"], cfg["d_out"], cfg["teacher_width"], cfg["teacher_noise"],
                            cfg["data_seed"])
    return image_data(kind, cfg["n"], cfg["d"], cfg["classes"], cfg["data_seed"], prepared)
