"""Phase 2 continued past T: does base's optimizer reach the optimum of phase 2's convex problem, given time?

The guarantee is asymptotic: base's convergence on a convex problem. Base's own schedule gives phase 2 only the
last iterations before T (a tenth of them at tau = 0.9 T), too few to judge that. So every head-only run without
augmentation keeps going on its cached features for recipe.horizon.epochs more epochs, with the same optimizer and
its state, the same mini-batches (each epoch's permutation from the run's seed) and base's own initial learning
rate (recipe.horizon.lr: 'initial'; the schedule decays it for the end of a fixed budget, and past T the question
is convergence), and its gap L(W_t) - L* is recorded at log-spaced epochs. The fitted rate is the slope of log gap
against epochs over the horizon's second half. The run's own outputs stay phase 2 at T.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from globalmin.optimum import Problem
from globalmin.train import Loop

CHECKPOINTS = 24  # horizon epochs at which the gap is computed (log-spaced): each costs an n x m_H product


def checkpoints(epochs: int, count: int = CHECKPOINTS) -> list[int]:
    """Log-spaced epochs 1 .. epochs (the last always included)."""
    return sorted({int(round(e)) for e in np.geomspace(1, epochs, min(count, epochs))} | {epochs})


def fitted_rate(epochs: list[int], gaps: list[float]) -> float | None:
    """exp(slope) of log gap against epoch over the second half of the horizon: the gap's factor per epoch (below 1
    when it shrinks); None with fewer than two positive gaps there."""
    half = [(e, g) for e, g in zip(epochs, gaps) if e >= epochs[-1] / 2 and g > 0]
    if len(half) < 2:
        return None
    x, y = np.array([e for e, _ in half], float), np.log([g for _, g in half])
    return float(np.exp(np.polyfit(x, y, 1)[0]))


def head_matrix(head: torch.nn.Linear) -> np.ndarray:
    """[W_out, b] in float64."""
    return torch.cat([head.weight.detach(), head.bias.detach()[:, None]], 1).double().cpu().numpy()


def horizon_lr(loop: Loop, setting: float | str) -> float:
    """The learning rate past T: 'initial' (base's own step size, the schedule's first), 'last' (the schedule's
    decayed last one) or a number."""
    if setting == "initial":
        return loop.lr(0)
    if setting == "last":
        return loop.lr(loop.schedule.total - 1)
    return float(setting)


def continue_phase2(loop: Loop, head: torch.nn.Linear, problem: Problem, optimum_objective: float,
                    gap_at_tau: float, epochs: int, lr: float | str = "initial"
                    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run loop.step for `epochs` more epochs from T; (rows of horizon.csv, the summary for metrics.json)."""
    schedule = loop.schedule
    lr = horizon_lr(loop, lr)
    due, rows = set(checkpoints(epochs)), []
    it = schedule.total
    for epoch in range(1, epochs + 1):
        for _ in range(schedule.iters_per_epoch):
            loop.step(it, lr)
            it += 1
        if epoch in due:
            w = head_matrix(head)
            value = problem.objective(w)
            rows.append({"epoch": schedule.epochs + epoch, "horizon_epoch": epoch, "iteration": it, "lr": lr,
                         "objective64": value, "gap": value - optimum_objective, "loss64": problem.loss(w),
                         "train_error": problem.error(w)})
    gaps = [r["gap"] for r in rows]
    summary = {"epochs": epochs, "iterations": epochs * schedule.iters_per_epoch, "lr": lr,
               "gap_at_horizon": gaps[-1], "gap_ratio": gaps[-1] / gap_at_tau if gap_at_tau > 0 else None,
               "rate_per_epoch": fitted_rate([r["horizon_epoch"] for r in rows], gaps),
               "loss_at_horizon": rows[-1]["loss64"], "train_error_at_horizon": rows[-1]["train_error"]}
    return rows, summary
