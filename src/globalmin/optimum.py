"""Phase 2's convex problem and its exact optimum, on the cached features of one A(base) run.

Phase 2 trains only the head W = [W_out, b] (k x (m+1)) on frozen features phi_i. With a_i = [phi_i, 1] it
minimises base's objective restricted to the head:
    L(W) = mean_i CE(W a_i, y_i) + (wd / 2) ||W||_F^2
(PyTorch's SGD weight decay adds wd * W to the gradient of every trained parameter, the bias included). With
wd > 0, L is strongly convex with modulus wd, so its minimiser W* is unique and for every W
    L(W) - L* <= ||grad L(W)||^2 / (2 wd),
which bounds a solver's remaining error rigorously by its own gradient.

Without the regulariser, the mean cross-entropy has infimum 0 exactly when the features separate the labels
linearly; rank n (the expressivity condition) makes any labels separable, which is the guarantee's premise.
Otherwise a minimiser exists and the infimum is positive; a stationary point of a convex function is a global
minimum, so a solver that stops with a vanishing gradient at a positive loss has found that infimum.

Under the squared loss on one-hot targets (a condition's `loss: squared`), L(W) = (1/2n) ||A W^T - Y||^2 +
(wd / 2) ||W||^2 is ridge regression: its minimiser is closed-form in A's SVD, W^T = V diag(s / (s^2 + n wd)) U^T Y,
and its unregularised infimum is (1/2n) ||(I - U U^T) Y||^2, the residual of Y outside col(A): 0 for arbitrary
labels exactly when A = [features, 1] has rank n. This is the experiment in which the certificate decides the
outcome (docs/science.md): cross-entropy's infimum is 0 as soon as the features separate the classes, which
needs less than rank n.

Solver (cross-entropy): scipy's L-BFGS in the basis of A's right singular vectors, each coordinate scaled by the
curvature there (s_j^2 / (4 n) + wd). In the raw coordinates the Hessian's condition number is about s_max^2 / (4 n wd),
about 10^5 on digits, and L-BFGS needs tens of thousands of iterations; scaled, a few hundred. Directions
below the numerical-rank tolerance of A (NumPy's matrix_rank rule) carry only rounding noise and are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize


LOSSES = ("cross_entropy", "squared")


@dataclass
class Problem:
    """The phase-2 problem of one run: float64 features (n x m), integer labels, classes, weight decay, loss."""

    features: np.ndarray
    labels: np.ndarray
    classes: int
    weight_decay: float
    loss_name: str = "cross_entropy"

    def __post_init__(self) -> None:
        self.a = np.hstack([np.asarray(self.features, dtype=np.float64), np.ones((len(self.labels), 1))])
        u, s, vt = scipy.linalg.svd(self.a, full_matrices=False)
        keep = s > s[0] * max(self.a.shape) * np.finfo(np.float64).eps if s.size else s > 0
        self.u, self.s, self.vt = u[:, keep], s[keep], vt[keep]
        self.onehot = np.eye(self.classes)[self.labels]

    @property
    def rank(self) -> int:
        """Numerical rank of A = [features, 1]."""
        return len(self.s)

    def logits(self, w: np.ndarray) -> np.ndarray:
        """A W^T, n x k."""
        return self.a @ w.T

    def loss(self, w: np.ndarray) -> float:
        """Mean loss (no regulariser) of head W: cross-entropy, or 1/2 ||W a_i - e_y||^2 averaged over the points."""
        if self.loss_name == "squared":
            return 0.5 * float(np.square(self.logits(w) - self.onehot).sum()) / len(self.labels)
        return _cross_entropy(self.logits(w), self.labels)[0]

    def objective(self, w: np.ndarray) -> float:
        """L(W): the mean loss plus (wd / 2) ||W||^2, the objective phase 2's optimizer minimises (its weight decay
        adds wd * W to the gradient)."""
        return self.loss(w) + 0.5 * self.weight_decay * float(np.square(w).sum())

    def gradient(self, w: np.ndarray) -> np.ndarray:
        """dL/dW."""
        n = len(self.labels)
        dz = (self.logits(w) - self.onehot) / n if self.loss_name == "squared" else _cross_entropy(
            self.logits(w), self.labels)[1]
        return dz.T @ self.a + self.weight_decay * w

    def error(self, w: np.ndarray) -> float:
        """Training error of head W, in %."""
        return 100.0 * float((self.logits(w).argmax(1) != self.labels).mean())


def _cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits z and its gradient with respect to z (softmax minus one-hot, over n)."""
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    total = p.sum(1, keepdims=True)
    rows = np.arange(len(labels))
    value = float(np.mean(np.log(total[:, 0]) - z[rows, labels]))
    p /= total
    p[rows, labels] -= 1.0
    return value, p / len(labels)


def _minimise(problem: Problem, w0: np.ndarray, weight_decay: float, max_iterations: int,
              stop: Any) -> tuple[np.ndarray, int]:
    """L-BFGS on the scaled singular-vector coordinates C (W = (C / d) V^T); `stop(value, grad_b)` ends it early.
    Returns the head W and the iterations used."""
    n = len(problem.labels)
    floor = weight_decay if weight_decay > 0 else 1e-10 * problem.s[0] ** 2 / (4 * n)
    d = np.sqrt(problem.s ** 2 / (4 * n) + floor)
    g = problem.u * (problem.s / d)  # the logits are G C^T

    last: dict[str, np.ndarray] = {}

    def value_and_grad(c_flat: np.ndarray) -> tuple[float, np.ndarray]:
        c = c_flat.reshape(problem.classes, -1)
        value, dz = _cross_entropy(g @ c.T, problem.labels)
        grad = dz.T @ g + weight_decay * c / d ** 2
        last.update(x=c_flat.copy(), grad=grad)
        return value + 0.5 * weight_decay * float(np.square(c / d).sum()), grad.ravel()

    def callback(intermediate_result: scipy.optimize.OptimizeResult) -> None:  # scipy passes it by this name
        # the accepted iterate is the line search's last evaluation: reuse its gradient
        if not np.array_equal(last.get("x"), intermediate_result.x):
            value_and_grad(intermediate_result.x)
        if stop(intermediate_result.fun, last["grad"] * d):  # d * dL/dC = dL/dB, B = W V
            raise StopIteration

    c0 = (w0 @ problem.vt.T) * d
    found = scipy.optimize.minimize(value_and_grad, c0.ravel(), jac=True, method="L-BFGS-B", callback=callback,
                                    options={"maxiter": max_iterations, "gtol": 0.0, "ftol": 0.0, "maxcor": 20})
    w = (found.x.reshape(problem.classes, -1) / d) @ problem.vt
    return w, int(found.nit)


def _ridge(problem: Problem, weight_decay: float) -> np.ndarray:
    """The squared loss's minimiser in closed form (the pseudo-inverse's at weight decay 0)."""
    n = len(problem.labels)
    return ((problem.vt.T * (problem.s / (problem.s ** 2 + n * weight_decay))) @ (problem.u.T @ problem.onehot)).T


def solve(problem: Problem, w0: np.ndarray, max_iterations: int = 5000, error_bound: float = 1e-9) -> dict[str, Any]:
    """The minimiser W* of L from the start W0, with a rigorous bound on L(W) - L* at the W returned."""
    if problem.weight_decay <= 0:
        raise ValueError("the exact optimum needs weight decay > 0 (a strongly convex problem)")
    if problem.loss_name == "squared":
        w = _ridge(problem, problem.weight_decay)
        bound = float(np.square(problem.gradient(w)).sum()) / (2 * problem.weight_decay)
        return {"w": w, "objective": problem.objective(w), "error_bound": bound, "converged": bound <= error_bound,
                "iterations": 0, "train_error": problem.error(w), "loss": problem.loss(w)}
    bound = {"value": float("inf")}

    def stop(_value: float, grad_b: np.ndarray) -> bool:
        bound["value"] = float(np.square(grad_b).sum()) / (2 * problem.weight_decay)
        return bound["value"] <= error_bound

    w, iterations = _minimise(problem, w0, problem.weight_decay, max_iterations, stop)
    return {"w": w, "objective": problem.objective(w), "error_bound": bound["value"],
            "converged": bound["value"] <= error_bound, "iterations": iterations,
            "train_error": problem.error(w), "loss": problem.loss(w)}


def infimum_unregularised(problem: Problem, w0: np.ndarray, max_iterations: int = 2000, zero_tol: float = 1e-8,
                          grad_tol: float = 1e-6) -> dict[str, Any]:
    """What the unregularised phase-2 problem admits: 'zero' (loss below zero_tol: the infimum 0, i.e. the
    global infimum of the network's loss, is reached), 'positive' (a stationary point: gradient norm at most
    grad_tol x the loss, at a loss above zero_tol; that loss is the infimum), or 'undecided' within the budget.

    Relative, because on separable labels loss and gradient vanish together along the separating direction
    (the gradient stays near margin x loss), while at a positive minimum the gradient vanishes alone.
    Under the squared loss the infimum is the residual of Y outside col(A), computed exactly."""
    if problem.loss_name == "squared":
        w = _ridge(problem, 0.0)
        residual = problem.onehot - problem.u @ (problem.u.T @ problem.onehot)
        value = 0.5 * float(np.square(residual).sum()) / len(problem.labels)
        kind = "zero" if value <= zero_tol else "positive"
        return {"infimum": 0.0 if kind == "zero" else value, "kind": kind, "loss": value, "grad_norm": 0.0,
                "train_error": problem.error(w), "iterations": 0, "w": w}
    seen = {"grad": float("inf")}

    def stop(value: float, grad_b: np.ndarray) -> bool:
        seen["grad"] = float(np.sqrt(np.square(grad_b).sum()))
        return value <= zero_tol or seen["grad"] <= grad_tol * value

    w, iterations = _minimise(problem, w0, 0.0, max_iterations, stop)
    value = problem.loss(w)
    kind = ("zero" if value <= zero_tol else "positive" if seen["grad"] <= grad_tol * value else "undecided")
    return {"infimum": 0.0 if kind == "zero" else value if kind == "positive" else None, "kind": kind,
            "loss": value, "grad_norm": seen["grad"], "train_error": problem.error(w), "iterations": iterations}



def test_error(w: np.ndarray, features: np.ndarray, labels: np.ndarray) -> float:
    """Test error in % of head W on float64 test features."""
    logits = np.hstack([features, np.ones((len(features), 1))]) @ w.T
    return 100.0 * float((logits.argmax(1) != labels).mean())
