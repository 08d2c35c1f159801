"""Phase 2's convex problem: the exact optimum with its error bound, and the unregularised infimum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from globalmin import optimum


def _problem(n: int = 60, m: int = 80, classes: int = 3, wd: float = 1e-3, seed: int = 0) -> optimum.Problem:
    rng = np.random.default_rng(seed)
    return optimum.Problem(np.tanh(rng.standard_normal((n, m))), rng.integers(0, classes, n), classes, wd)


def test_objective_is_cross_entropy_plus_weight_decay_on_weight_and_bias():
    p = _problem()
    w = np.random.default_rng(1).standard_normal((3, 81)) * 0.1
    logits = p.features @ w[:, :-1].T + w[:, -1]
    shifted = logits - logits.max(1, keepdims=True)
    ce = np.mean(np.log(np.exp(shifted).sum(1)) - shifted[np.arange(60), p.labels])
    assert p.loss(w) == pytest.approx(ce, rel=1e-12)
    assert p.objective(w) == pytest.approx(ce + 0.5e-3 * np.square(w).sum(), rel=1e-12)


def test_solver_matches_a_plain_reference_and_its_bound_holds():
    p = _problem()
    found = optimum.solve(p, np.zeros((3, 81)), error_bound=1e-12)
    assert found["converged"] and found["error_bound"] <= 1e-12

    def value_and_grad(flat):  # the same objective in the raw coordinates, for scipy's own L-BFGS
        w = flat.reshape(3, -1)
        z = p.a @ w.T
        z = z - z.max(1, keepdims=True)
        prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        value = np.mean(-np.log(prob[np.arange(60), p.labels])) + 0.5 * p.weight_decay * np.square(w).sum()
        prob[np.arange(60), p.labels] -= 1
        return value, (prob.T @ p.a / 60 + p.weight_decay * w).ravel()

    reference = scipy.optimize.minimize(value_and_grad, np.zeros(3 * 81), jac=True, method="L-BFGS-B",
                                        options={"maxiter": 100000, "gtol": 1e-13, "ftol": 0})
    assert found["objective"] <= reference.fun + 1e-12
    assert found["objective"] == pytest.approx(reference.fun, abs=1e-10)
    # strong convexity: any head is at least as high as L*, and its gap is bounded by its gradient
    w = np.random.default_rng(2).standard_normal((3, 81)) * 0.05
    assert p.objective(w) - found["objective"] >= -1e-12


def test_more_features_than_points_interpolate_without_weight_decay():
    p = _problem(n=40, m=80)  # rank n: any labels can be fit
    result = optimum.infimum_unregularised(p, np.zeros((3, 81)))
    assert result["kind"] == "zero" and result["infimum"] == 0.0 and result["train_error"] == 0.0


def test_inseparable_labels_have_a_positive_infimum():
    features = np.repeat(np.random.default_rng(0).standard_normal((10, 5)), 2, axis=0)  # every point twice...
    labels = np.tile([0, 1], 10)  # ...with both labels: no head can fit both copies
    p = optimum.Problem(features, labels, 2, 1e-3)
    result = optimum.infimum_unregularised(p, np.zeros((2, 6)), grad_tol=1e-8)
    assert result["kind"] == "positive" and result["infimum"] == pytest.approx(np.log(2), rel=1e-6)
    assert result["train_error"] == pytest.approx(50.0)


def test_an_unconverged_solve_is_undecided_or_unconverged():
    p = _problem(n=40, m=80)
    assert optimum.infimum_unregularised(p, np.zeros((3, 81)), max_iterations=1)["kind"] == "undecided"
    assert not optimum.solve(p, np.zeros((3, 81)), max_iterations=1, error_bound=1e-14)["converged"]
    with pytest.raises(ValueError, match="weight decay > 0"):
        optimum.solve(optimum.Problem(p.features, p.labels, 3, 0.0), np.zeros((3, 81)))


def test_rank_drops_numerically_null_directions():
    features = np.random.default_rng(0).standard_normal((30, 4))
    p = optimum.Problem(np.hstack([features, features]), np.zeros(30, dtype=int), 2, 1e-3)
    assert p.rank == 5  # 8 columns, 4 of them copies, plus the bias
