"""The expressivity certificate."""

from __future__ import annotations

import numpy as np
import torch

from globalmin.certificate import certify, wide_features
from globalmin.models import build_model


def _with_singular_values(n: int, m: int, values: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, n)))
    v, _ = np.linalg.qr(rng.standard_normal((m, m)))
    return (u[:, : len(values)] * values) @ v[:, : len(values)].T


def test_known_spectrum_is_recovered():
    values = np.logspace(0, -6, 40)
    cert = certify(_with_singular_values(40, 60, values))
    assert cert["full_rank"] and cert["rank"] == 40
    assert abs(cert["sigma_min"] - 1e-6) / 1e-6 < 1e-6 and abs(cert["sigma_max"] - 1.0) < 1e-12


def test_rank_deficient_matrix_is_caught():
    values = np.r_[np.ones(30), np.zeros(10)]
    cert = certify(_with_singular_values(40, 60, values))
    assert not cert["full_rank"] and cert["rank"] == 30 and cert["sigma_min"] < cert["tolerance"]


def test_fewer_columns_than_rows_fails():
    cert = certify(np.random.default_rng(0).standard_normal((50, 49)))
    assert not cert["full_rank"] and cert["sigma_min"] == 0.0 and cert["rank"] == 49


def test_duplicated_inputs_make_features_rank_deficient():
    torch.manual_seed(0)
    model = build_model({"widths": [4], "blocks": [1], "wide_activation": "tanh"}, 1, 10, 64).eval()
    x = torch.rand(40, 1, 8, 8)
    assert certify(wide_features(model, x))["full_rank"]
    x[7] = x[3]
    cert = certify(wide_features(model, x))
    assert not cert["full_rank"] and cert["rank"] == 39


def test_features_are_computed_without_touching_the_model():
    model = build_model({"widths": [4], "blocks": [1]}, 1, 10, 16).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats = wide_features(model, torch.rand(10, 1, 8, 8))
    assert feats.dtype == torch.float64 and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


import pytest  # noqa: E402


@pytest.mark.parametrize("values, certified", [
    (np.linspace(1.0, 0.1, 60), True),
    (np.logspace(0, -10, 60), True),
    (np.r_[np.ones(55), np.zeros(5)], False),
    (np.r_[np.ones(59), 1e-15], False),
])
def test_qr_method_matches_the_exact_svd_on_known_spectra(values, certified):
    matrix = _with_singular_values(60, 90, values, seed=3)
    exact, qr = certify(matrix, "svd"), certify(matrix, "qr")
    assert exact["full_rank"] == qr["full_rank"] == certified
    assert qr["sigma_min_lower_bound"] <= exact["sigma_min"] * (1 + 1e-8) + exact["tolerance"]
    if certified:
        assert abs(qr["sigma_min"] - values.min()) <= 1e-6 * values.min()  # the estimate converged
        assert qr["sigma_min_lower_bound"] >= values.min() / np.sqrt(60)  # the bound is within sqrt(n)
    assert abs(qr["sigma_max"] - 1.0) < 1e-3


def test_qr_method_on_random_features_and_wide_short_cases():
    rng = np.random.default_rng(0)
    features = np.tanh(rng.standard_normal((150, 150)))
    exact, qr = certify(features, "svd"), certify(features, "qr")
    assert qr["full_rank"] and abs(qr["sigma_min"] - exact["sigma_min"]) <= 1e-8 * exact["sigma_max"]
    short = certify(rng.standard_normal((40, 39)), "qr")
    assert not short["full_rank"] and short["sigma_min"] == 0.0
    with pytest.raises(ValueError, match="certificate method"):
        certify(features, "cholesky")
