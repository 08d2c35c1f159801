"""The expressivity certificate."""

from __future__ import annotations

import numpy as np
import torch

from globalmin.certificate import (certify, certify_model, certify_qr, factor_in_place, factor_lapack,
                                   feature_matrix, gram_product, inverse_frobenius, scratch_matrix, solve_lower,
                                   solve_upper)
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
    assert certify(feature_matrix(model, x))["full_rank"]
    x[7] = x[3]
    cert = certify(feature_matrix(model, x))
    assert not cert["full_rank"] and cert["rank"] == 39


def test_features_are_computed_without_touching_the_model():
    model = build_model({"widths": [4], "blocks": [1]}, 1, 10, 16).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats = feature_matrix(model, torch.rand(10, 1, 8, 8))
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
    # m < n at the Fashion-MNIST control's size (n = 4,000, m_H = n/2): sigma_max and the tolerance without an SVD
    tall = rng.standard_normal((4000, 2000))
    control = certify(tall, "qr")
    assert control["sigma_max"] == pytest.approx(np.linalg.norm(tall, 2), rel=1e-10)
    assert np.isfinite(control["tolerance"]) and not control["full_rank"]
    with pytest.raises(ValueError, match="certificate method"):
        certify(features, "cholesky")


@pytest.mark.parametrize("n, m, block, chunk_bytes", [(50, 50, 7, 8 * 50 * 3), (40, 65, 16, 1), (33, 33, 64, 1 << 20)])
def test_blocked_in_place_qr_gives_the_r_factor(n, m, block, chunk_bytes):
    phi = torch.from_numpy(np.random.default_rng(n).standard_normal((n, m)))
    work = phi.clone()
    lower = factor_in_place(work, block, chunk_bytes)  # several panels and one- to three-row chunks
    assert lower.data_ptr() == work.data_ptr()  # a view: nothing copied
    assert torch.allclose(lower @ lower.mT, phi @ phi.mT, atol=1e-10)  # R^T R = Phi Phi^T
    assert torch.equal(lower, lower.tril()) and not work[:, n:].any()
    r = torch.linalg.qr(phi.mT, mode="r").R
    assert torch.allclose(lower.diagonal().abs(), r.diagonal().abs(), atol=1e-10)


def test_blocked_triangular_solves_and_inverse_norm():
    rng = np.random.default_rng(1)
    lower = torch.from_numpy(np.tril(rng.standard_normal((45, 45))) + 6 * np.eye(45))
    rhs = torch.from_numpy(rng.standard_normal((45, 3)))
    assert torch.allclose(lower @ solve_lower(lower, rhs, block=8), rhs, atol=1e-12)
    assert torch.allclose(lower.mT @ solve_upper(lower, rhs, block=8), rhs, atol=1e-12)
    wide = torch.cat([lower, torch.ones(45, 5, dtype=lower.dtype)], dim=1)  # L as Phi's first columns: row stride 50
    assert torch.allclose(gram_product(wide[:, :45], rhs, block=8), lower @ (lower.mT @ rhs), atol=1e-12)
    expected = float(torch.linalg.matrix_norm(torch.linalg.inv(lower)))
    assert abs(inverse_frobenius(lower, block=8) - expected) <= 1e-12 * expected


@pytest.mark.parametrize("values, certified", [
    (np.logspace(0, -10, 70), True),
    (np.r_[np.ones(64), np.zeros(6)], False),
])
def test_small_blocks_match_the_exact_svd(values, certified):
    matrix = _with_singular_values(70, 80, values, seed=5)
    exact = certify(matrix, "svd")
    blocked = certify_qr(torch.from_numpy(matrix), block=9, chunk_bytes=8 * 80 * 4, factorisation="blocked")
    assert blocked["full_rank"] == exact["full_rank"] == certified
    if certified:
        assert abs(blocked["sigma_min"] - values.min()) <= 1e-6 * values.min()
        assert values.min() / np.sqrt(70) <= blocked["sigma_min_lower_bound"] <= values.min() * (1 + 1e-8)


def test_out_of_core_path_factorises_a_file_backed_matrix(tmp_path):
    matrix = _with_singular_values(60, 75, np.logspace(0, -4, 60), seed=2)
    work = scratch_matrix(60, 75, tmp_path)
    work.copy_(torch.from_numpy(matrix))
    assert len(list(tmp_path.iterdir())) == 1  # Phi lives in the file
    on_disk = certify_qr(work, overwrite=True, block=8, chunk_bytes=8 * 75 * 5, factorisation="blocked")
    in_memory = certify(matrix, "qr")
    assert on_disk["in_place"] and on_disk["full_rank"]
    assert abs(on_disk["sigma_min"] - in_memory["sigma_min"]) <= 1e-9 * in_memory["sigma_min"]
    del work
    import gc
    gc.collect()
    assert not list(tmp_path.iterdir())  # the scratch file goes with the tensor


def test_certify_model_uses_preallocated_features(tmp_path):
    torch.manual_seed(0)
    model = build_model({"widths": [4], "blocks": [1], "wide_activation": "tanh"}, 1, 10, 64)
    x = torch.rand(50, 1, 8, 8)
    exact = certify_model(model, x, "svd", batch_size=7)
    qr = certify_model(model, x, "qr", batch_size=7, scratch=tmp_path)
    assert exact["full_rank"] and qr["full_rank"] and qr["in_place"]
    assert abs(exact["sigma_min"] - qr["sigma_min"]) <= 1e-8 * exact["sigma_max"]
    assert torch.allclose(feature_matrix(model, x, batch_size=7), feature_matrix(model, x, batch_size=50), atol=1e-13)


def test_lapack_path_factorises_in_place_and_leaves_files_to_the_blocked_path(tmp_path):
    phi = torch.from_numpy(np.random.default_rng(3).standard_normal((60, 90)))
    work = phi.clone()
    lower = factor_lapack(work)
    assert lower is not None and lower.data_ptr() == work.data_ptr()  # LAPACK wrote into Phi: nothing copied
    assert torch.equal(lower, lower.tril()) and not work[:, 60:].any()
    assert torch.allclose(lower @ lower.mT, phi @ phi.mT, atol=1e-10)
    blocked = factor_in_place(phi.clone(), 16)
    assert torch.allclose(lower.abs(), blocked.abs(), atol=1e-10)  # the same R up to the signs of its rows
    on_disk = scratch_matrix(60, 90, tmp_path)
    on_disk.copy_(phi)
    assert factor_lapack(on_disk) is None and factor_lapack(phi.float()) is None


def test_certificate_records_the_factorisation_it_used():
    matrix = torch.from_numpy(_with_singular_values(40, 50, np.logspace(0, -3, 40), seed=4))
    lapack = certify_qr(matrix)
    blocked = certify_qr(matrix, block=8, factorisation="blocked")
    assert "LAPACK geqrf" in lapack["method"] and "block" not in lapack
    assert "blocked" in blocked["method"] and blocked["block"] == 8
    assert abs(lapack["sigma_min"] - blocked["sigma_min"]) <= 1e-9 * blocked["sigma_min"]
    with pytest.raises(ValueError, match="factorisation"):
        certify_qr(matrix, factorisation="cholesky")
