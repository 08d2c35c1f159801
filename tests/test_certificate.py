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
