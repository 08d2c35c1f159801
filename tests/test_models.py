"""The PreAct ResNet with the wide layer."""

from __future__ import annotations

import pytest
import torch

from globalmin.models import build_model, parameter_groups


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_resnet18_layout_handles_every_input_size(size):
    model = build_model({"widths": [64, 128, 256, 512], "blocks": [2, 2, 2, 2], "wide_width": 50,
                         "require_expressivity": False}, 3, 10, 1000)
    assert model(torch.rand(2, 3, size, size)).shape == (2, 10)
    assert model.wide.in_features == 512 and model.wide.out_features == 50
    assert len(model.body) == 8


def test_wide_width_defaults_to_n_and_features_have_that_width():
    model = build_model({"widths": [4], "blocks": [1], "wide_activation": "tanh"}, 1, 10, 123)
    assert model.features(torch.rand(5, 1, 8, 8)).shape == (5, 123)
    assert isinstance(model.act, torch.nn.Tanh)


def test_parameter_groups_split_head_wide_and_body():
    groups = parameter_groups(build_model({"widths": [4, 8], "blocks": [1, 1]}, 1, 10, 20))
    assert groups["head"] == ["head.weight", "head.bias"] and groups["wide"] == ["wide.weight", "wide.bias"]
    assert groups["body"] and not any(n.startswith(("head", "wide")) for n in groups["body"])


def test_mismatched_widths_and_blocks_are_rejected():
    with pytest.raises(ValueError, match="same length"):
        build_model({"widths": [4, 8], "blocks": [1]}, 1, 10, 20)
