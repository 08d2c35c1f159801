"""Training a local-minimum student toward a critical point: a first-order phase (torch.optim's Adam or GD) moves
the seeded init into a basin, then Levenberg-Marquardt or L-BFGS polishes it in float64."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from globalmin.local_minima_net import Student, jacobian, parameters


def squared_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = ½ Σ ‖f(x_i) − y_i‖² of the live parameters (the same arithmetic as local_minima_net.loss)."""
    return 0.5 * ((model(x) - y) ** 2).sum()


def first_order(model: Student, x: torch.Tensor, y: torch.Tensor, optimizer: str, lr: float, steps: int) -> None:
    """Full-batch Adam or GD on L, in place."""
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        squared_loss(model, x, y).backward()
        opt.step()


@torch.no_grad()
def polish_lm(model: Student, x: torch.Tensor, y: torch.Tensor, iters: int, grad_target: float) -> int:
    """Levenberg-Marquardt on the residual f(X) − y, in place; returns the iterations used.

    The natural second-order method for a sum of squares: it reuses the Jacobian the study needs anyway and
    reaches float64-level gradients in tens of steps where L-BFGS crawls (narrow deep nets). It stops when
    ‖∇L‖ <= grad_target, or when no damping gives descent (a ReLU kink, or the end of float64 precision).
    """
    yv, damping = y.reshape(-1), 1e-3
    params = dict(model.named_parameters())  # the live parameters: vector_to_parameters writes each trial into them

    def residual() -> torch.Tensor:
        return model(x).reshape(-1) - yv  # the same arithmetic as outputs() and loss(), without their copies

    theta, r = nn.utils.parameters_to_vector(model.parameters()).detach(), residual()
    value = float(0.5 * (r ** 2).sum())
    for it in range(iters):
        j, _ = jacobian(model, params, x)  # r is the residual at theta: the accepted trial's, or the first
        g = j.T @ r
        if float(g.norm()) <= grad_target:
            return it
        small = j @ j.T if j.shape[0] < j.shape[1] else j.T @ j  # solve in the smaller of the two spaces
        while True:
            damped = small.clone()
            damped.diagonal().add_(damping)  # small + λI, with the same bits as adding λ times the identity
            chol, info = torch.linalg.cholesky_ex(damped)
            if int(info) == 0:
                # (JᵀJ + λI)⁻¹ Jᵀ r = Jᵀ (JJᵀ + λI)⁻¹ r: the same step from either side
                step = (j.T @ torch.cholesky_solve(r[:, None], chol)).flatten() if j.shape[0] < j.shape[1] \
                    else torch.cholesky_solve(g[:, None], chol).flatten()
                trial_theta = theta - step
                nn.utils.vector_to_parameters(trial_theta, model.parameters())
                trial_r = residual()
                trial = float(0.5 * (trial_r ** 2).sum())
                if trial < value:
                    theta, r, value, damping = trial_theta, trial_r, trial, max(damping / 3, 1e-12)
                    break
            damping *= 4
            if damping > 1e12:
                nn.utils.vector_to_parameters(theta, model.parameters())
                return it
    return iters


def polish_lbfgs(model: Student, x: torch.Tensor, y: torch.Tensor, iters: int, grad_target: float) -> int:
    """L-BFGS with a strong-Wolfe line search, in place; returns the iterations used."""
    # tolerance_change 0: L-BFGS's default (1e-9, absolute) would stop long before float64 precision
    opt = torch.optim.LBFGS(list(model.parameters()), lr=1.0, max_iter=iters, max_eval=2 * iters,
                            tolerance_grad=grad_target, tolerance_change=0.0, history_size=50,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = squared_loss(model, x, y)
        value.backward()
        return value

    opt.step(closure)
    return int(opt.state[opt._params[0]].get("n_iter", 0))


def train(model: Student, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> dict[str, Any]:
    """First-order phase, then polishing toward a critical point (in place); the state after the first phase
    (to measure L − LB away from criticality too) and the polishing iterations used."""
    first_order(model, x, y, cfg["optimizer"], cfg["lr"], cfg["steps"])
    after_first = parameters(model)
    # polish a decade past the certificate so that certified runs are not borderline
    polish = polish_lm if cfg["polish"] == "lm" else polish_lbfgs
    used = polish(model, x, y, cfg["polish_iters"], cfg["grad_tol"] * 0.1) if cfg["polish_iters"] else 0
    return {"after_first": after_first, "polish_iters_used": used}
