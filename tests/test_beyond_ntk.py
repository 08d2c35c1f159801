"""Beyond-NTK movement metrics of the Recipe's ResNet runs."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch

from globalmin import beyond_ntk
from globalmin.models import build_model


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model({"widths": [4, 8], "blocks": [1, 1], "wide_activation": "tanh"}, 1, 3, 20)


def test_an_untrained_network_has_not_moved():
    model, x = _model(), torch.rand(6, 1, 8, 8)
    same = beyond_ntk.movement(model, copy.deepcopy(model), x)
    assert same["relative_weight_movement"] == 0.0 and same["flip_fraction"] == 0.0
    assert same["kernel_change"] == 0.0 and abs(same["kernel_distance"]) < 1e-12
    assert same["relu_units"] == 4 * 64 + 4 * 64 + 4 * 64 + 8 * 16 + 8 * 16  # per input: bn1, bn2 per block, bn_out


def test_trace_kernel_equals_per_sample_gradients():
    model, x = _model(1), torch.rand(5, 1, 8, 8)
    kernel = beyond_ntk.trace_ntk(model, x)
    model.eval()
    expected = torch.zeros(5, 5, dtype=torch.float64)
    for c in range(3):
        grads = []
        for i in range(5):
            out = model(x[i:i + 1])[0, c]
            grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(out, list(model.parameters()))]))
        g = torch.stack(grads).double()
        expected += g @ g.T
    assert torch.allclose(kernel, expected, rtol=1e-5, atol=1e-8)


def test_trace_kernel_per_point_equals_jacrev_of_the_whole_batch():
    from torch.func import functional_call, jacrev

    model, x = _model(2), torch.rand(7, 1, 8, 8)
    kernel = beyond_ntk.trace_ntk(model, x)
    params = {k: v.detach() for k, v in model.named_parameters()}
    expected = torch.zeros(7, 7, dtype=torch.float64)
    for c in range(3):
        jac = jacrev(lambda p, c=c: functional_call(model, p, (x,))[:, c])(params)
        flat = torch.cat([j.reshape(7, -1) for j in jac.values()], dim=1).double()
        expected += flat @ flat.T
    # equal up to float32 rounding only: J is float32, and a convolution's weight gradient sums over positions
    # in an order that may depend on the batch size (measured: 2e-10 to 4e-10 of the largest entry)
    assert float((kernel - expected).abs().max()) <= 1e-7 * float(expected.abs().max())


def test_moving_one_layer_is_seen_by_all_three_metrics():
    model, x = _model(2), torch.rand(6, 1, 8, 8)
    moved = copy.deepcopy(model)
    with torch.no_grad():
        moved.bn_out.bias += 0.5  # shifts every unit of the last ReLU: signs flip, the kernel changes
    result = beyond_ntk.movement(model, moved, x)
    assert result["flip_fraction"] > 0 and result["kernel_change"] > 0
    assert result["relative_weight_movement_body"] > 0
    assert result["relative_weight_movement_head"] == result["relative_weight_movement_wide"] == 0.0


LAZY = pd.DataFrame({"m": [64, 256, 1024], "depth": 2, "relative_weight_movement": [0.1, 0.05, 0.01],
                     "flip_fraction": [0.1, 0.05, 0.03], "kernel_change": [0.6, 0.2, 0.05],
                     "kernel_distance": [0.05, 0.01, 0.001]})


def _resnet(distance: float) -> pd.DataFrame:
    return pd.DataFrame({"algorithm": ["base", "base", "A(base)"], "dataset": "digits", "condition": "standard",
                         "augment": False, "relative_weight_movement": 0.2, "flip_fraction": 0.4,
                         "kernel_change": 600.0, "kernel_distance": [distance, distance, 1.0]})


@pytest.mark.parametrize("distance, verdict", [(0.2, "supported"), (0.0005, "not supported"), (0.03, "inconclusive")])
def test_r4_reads_the_scale_free_kernel_distance_against_the_whole_width_trend(distance, verdict):
    claim = beyond_ntk.beyond_ntk_claim(_resnet(distance), LAZY, depth=2, evidence=[])
    assert claim["id"] == "R4" and claim["verdict"] == verdict and claim["reconstructed"]
    assert claim["measured"]["mlp_by_width"] == {64: 0.05, 256: 0.01, 1024: 0.001}
    assert claim["measured"]["resnet_base_median"] == distance
    if verdict == "inconclusive":  # as lazy as an MLP of width between 64 and 256
        assert 64 < claim["measured"]["mlp_width_with_equal_value"] < 256


def test_comparison_table_lists_mlps_and_resnet_settings():
    table = beyond_ntk.comparison(_resnet(0.03), LAZY, depth=2)
    assert len(table) == 3 + 2 and set(table.kind) == {"lazy MLP (ntk study)", "Recipe ResNet run"}


def test_measure_runs_shares_the_initial_network_of_a_seed(digits_file, tmp_path, monkeypatch):
    from conftest import TINY_MODEL, TINY_TRAIN, train_base

    # TF32 on, as a training job on a GPU leaves it: the kernels must be computed without, then it is restored.
    # (monkeypatch cannot set cuBLAS's flag: it is not a plain attribute.)
    def tf32() -> tuple[bool, bool]:
        return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32

    def set_tf32(cudnn: bool, matmul: bool) -> None:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul

    seen, trace_ntk, saved = [], beyond_ntk.trace_ntk, tf32()
    monkeypatch.setattr(beyond_ntk, "trace_ntk", lambda *args: seen.append(tf32()) or trace_ntk(*args))

    models = []
    for condition, labels in (("standard", "dataset"), ("random_labels", "random")):
        out = tmp_path / condition
        train_base(digits_file, out, 0, False, TINY_MODEL, TINY_TRAIN, 0.5,
                   condition={"name": condition, "labels": labels, "label_seed": 0})
        models.append(str(out / "model.pt"))
    set_tf32(True, True)
    try:
        runs = beyond_ntk.measure_runs([str(digits_file)], models, subset=6)
        assert tf32() == (True, True)
    finally:
        set_tf32(*saved)
    assert list(runs.condition) == ["standard", "random_labels"] and (runs.relative_weight_movement > 0).all()
    assert runs.subset_size.eq(6).all() and (runs.kernel_distance > 0).all()
    assert seen == [(False, False)] * 3  # one initial network (shared), two trained ones
