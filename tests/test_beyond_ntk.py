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


def test_moving_one_layer_is_seen_by_all_three_metrics():
    model, x = _model(2), torch.rand(6, 1, 8, 8)
    moved = copy.deepcopy(model)
    with torch.no_grad():
        moved.bn_out.bias += 0.5  # shifts every unit of the last ReLU: signs flip, the kernel changes
    result = beyond_ntk.movement(model, moved, x)
    assert result["flip_fraction"] > 0 and result["kernel_change"] > 0
    assert result["relative_weight_movement_body"] > 0
    assert result["relative_weight_movement_head"] == result["relative_weight_movement_wide"] == 0.0


def test_claim_compares_resnet_runs_with_the_widest_lazy_mlp():
    lazy = pd.DataFrame({"m": [64, 1024], "depth": [2, 2], "relative_weight_movement": [0.1, 0.01],
                         "flip_fraction": [0.05, 0.01], "kernel_change": [0.2, 0.02]})
    resnet = pd.DataFrame({"algorithm": ["base", "base", "A(base)"], "dataset": "digits", "augment": False,
                           "relative_weight_movement": [0.2, 0.3, 0.3], "flip_fraction": [0.3, 0.4, 0.4],
                           "kernel_change": [5.0, 7.0, 7.0]})
    claim = beyond_ntk.beyond_ntk_claim(resnet, lazy, depth=2, factor=10, evidence=[])
    assert claim["id"] == "R4" and claim["verdict"] == "supported"
    assert claim["measured"]["kernel_change"]["ratio"] == pytest.approx(6.0 / 0.02)
    lazy_far = lazy.assign(relative_weight_movement=[0.5, 0.5])
    assert beyond_ntk.beyond_ntk_claim(resnet, lazy_far, 2, 10, [])["verdict"] == "inconclusive"
    table = beyond_ntk.comparison(resnet, lazy, depth=2)
    assert len(table) == 2 + 2 and set(table.kind) == {"lazy MLP (ntk study)", "Recipe ResNet run"}
