"""What the local-minimum study measures at one parameter value: the projection bound LB = ½‖(I − P[J]) y‖² of
Kawaguchi, Huang & Kaelbling, rank J, each layer's share of ‖P[J] y‖², whether col(J) contains the linear model,
dead units, and the least-squares baselines (linear and random features) the minima are compared with."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from globalmin.local_minima_net import ACTIVATIONS, Student, grad_norm, jacobian, loss
from globalmin.runinfo import derive_seed


def rank_tolerance(j: torch.Tensor, rtol: float) -> float:
    """Singular values at or below rtol·σ_max(J) count as zero (one absolute tolerance for J and its sub-blocks)."""
    return float(rtol * torch.linalg.matrix_norm(j, ord=2)) if j.numel() else 0.0


def basis(a: torch.Tensor, tol: float) -> torch.Tensor:
    """Orthonormal basis of col(A): left singular vectors whose singular values exceed `tol`."""
    return basis_and_floor(a, tol)[0]


def basis_and_floor(a: torch.Tensor, tol: float) -> tuple[torch.Tensor, float]:
    """`basis`, and the smallest singular value it keeps (0 when it keeps none)."""
    if a.shape[1] == 0:
        return a.new_zeros(a.shape[0], 0), 0.0
    u, s, _ = torch.linalg.svd(a, full_matrices=False)
    kept = s > tol
    return u[:, kept], float(s[kept].min()) if bool(kept.any()) else 0.0


def projection(a: torch.Tensor, y: torch.Tensor, tol: float) -> tuple[torch.Tensor, int]:
    """P[A] y and rank A; y is stacked to A's rows (a vector for J, the n x d_out matrix Y for [X, 1])."""
    u = basis(a, tol)
    y = y.reshape(a.shape[0], -1)
    return u @ (u.T @ y), int(u.shape[1])


def projection_energy(a: torch.Tensor, y: torch.Tensor, tol: float) -> tuple[float, int]:
    """‖P[A] y‖² and rank A."""
    py, rank = projection(a, y, tol)
    return float((py ** 2).sum()), rank


def residual_loss(a: torch.Tensor, y: torch.Tensor, tol: float) -> float:
    """½ ‖(I − P[A]) y‖²: the least-squares loss of regressing y on the columns of A (residual formed directly,
    not as ½‖y‖² − ½‖P y‖², which would cancel catastrophically when the fit is nearly exact)."""
    py, _ = projection(a, y, tol)
    return 0.5 * float(((y.reshape(py.shape) - py) ** 2).sum())


def layer_contributions(j: torch.Tensor, blocks: list[tuple[str, slice]], y: torch.Tensor,
                        tol: float) -> list[float]:
    """B3: add layer blocks from the output layer downward; each layer's increase of ‖P y‖² (output first)."""
    done, values, previous = [], [], 0.0
    for _, cols in reversed(blocks):
        done.append(j[:, cols])
        energy, _ = projection_energy(torch.cat(done, dim=1), y, tol)
        values.append(energy - previous)
        previous = energy
    return values


def with_ones(x: torch.Tensor) -> torch.Tensor:
    """[X, 1]."""
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def per_output(a: torch.Tensor, d_out: int) -> torch.Tensor:
    """A ⊗ I_{d_out}: the same regressors for every output, in the stacked (point-major) order."""
    return torch.kron(a, torch.eye(d_out, dtype=a.dtype))


def ols_loss(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear least squares on [X, 1], each output separately (½ ‖(I − P[[X, 1]]) Y‖²_F)."""
    a = with_ones(x)
    return residual_loss(a, y, rank_tolerance(a, 1e-12))


def random_features(x: torch.Tensor, m: int, activation: str, seed: int) -> torch.Tensor:
    """[φ(X Wᵀ + b), 1] with fixed W ~ N(0, 1/d), b ~ N(0, 1): m random features plus a bias column."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(m, x.shape[1], generator=gen, dtype=torch.float64) / math.sqrt(x.shape[1])
    b = torch.randn(m, generator=gen, dtype=torch.float64)
    return with_ones(ACTIVATIONS[activation](x @ w.T + b))


def random_feature_loss(x: torch.Tensor, y: torch.Tensor, m: int, activation: str, seed: int, draws: int) -> float:
    """Least squares on m random features (as many as the net's last hidden layer) plus bias, mean over draws."""
    losses = []
    for draw in range(draws):
        a = random_features(x, m, activation, derive_seed(seed, "lm-rf", m, draw))
        losses.append(residual_loss(a, y, rank_tolerance(a, 1e-12)))
    return float(np.mean(losses))


def linear_residual(u: torch.Tensor, x: torch.Tensor, d_out: int) -> float:
    """Largest relative residual of a column of [X, 1] ⊗ I_{d_out} after projecting onto span(u) (0: contained)."""
    a = per_output(with_ones(x), d_out)
    rest = a - u @ (u.T @ a)
    return float((rest.norm(dim=0) / a.norm(dim=0).clamp_min(1e-300)).max())


def preacts(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden pre-activations under the given parameters."""
    pre = []
    for k in range(len(model.hidden)):
        pre.append(x @ params[f"hidden.{k}.weight"].T + params[f"hidden.{k}.bias"])
        x = model.act(pre[-1])
    return pre


def dead_units(model: Student, pre: list[torch.Tensor]) -> list[float]:
    """Per hidden layer, the fraction of units inactive (pre-activation <= 0) on every input; relu only."""
    if model.act is not torch.relu:
        return [0.0] * len(pre)  # a tanh unit is zero only where its pre-activation is exactly 0
    return [float((z <= 0).all(dim=0).double().mean()) for z in pre]


def measure(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
            rank_rtol: float, contain_tol: float) -> dict[str, Any]:
    """Everything measured at one parameter value: L, LB, the gap, ‖∇L‖, rank J, B3 contributions, containment."""
    j, blocks = jacobian(model, params, x)
    tol = rank_tolerance(j, rank_rtol)
    u, sigma_min = basis_and_floor(j, tol)
    py = u @ (u.T @ y.reshape(-1))
    energy, rank = float((py ** 2).sum()), int(u.shape[1])
    value = float(loss(model, params, x, y))
    lb = 0.5 * float(((y.reshape(-1) - py) ** 2).sum())
    contributions = layer_contributions(j, blocks, y, tol)
    residual = linear_residual(u, x, y.shape[1])
    with torch.no_grad():
        pre = preacts(model, params, x)
    dead = dead_units(model, pre)
    closest = min(float(z.abs().min()) for z in pre)
    return {"loss": value, "lower_bound": lb, "gap": value - lb, "grad_norm": grad_norm(model, params, x, y),
            "rank_j": rank, "jac_rows": j.shape[0], "projection_energy": energy,
            # the smallest singular value of J counted in its rank: L − LB <= ‖∇L‖² / (2 sigma_min²) (check B2)
            "sigma_min_j": sigma_min,
            "layer_contributions": json.dumps(contributions), "min_layer_contribution": float(min(contributions)),
            "linear_residual": residual, "contains_linear": residual <= contain_tol,
            "dead_fraction_max": float(max(dead)), "collapsed": bool(max(dead) == 1.0),
            # smallest |pre-activation| over units and points: near 0 a ReLU net sits on a kink, where L is
            # not differentiable and the equality L = LB is not promised
            "min_abs_preact": closest,
            # largest |parameter|: tanh nets that drift toward saturation have no finite critical point to reach
            "max_abs_param": float(max(v.abs().max() for v in params.values()))}
