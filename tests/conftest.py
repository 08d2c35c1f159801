"""Shared fixtures: the real digits data prepared once, and tiny model/training configs for fast runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from globalmin import data

REPO = Path(__file__).resolve().parents[1]

TINY_MODEL = {"widths": [4], "blocks": [1], "wide_width": None, "wide_activation": "tanh"}
TINY_TRAIN = {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False, "batch_size": 64,
              "eval_batch_size": 2048, "epochs": {"plain": 2, "augmented": 2},
              "milestones": {"plain": [1], "augmented": [1]}, "lr_gamma": 0.1, "device": "cpu", "bf16": False,
              "threads": 1}
RECIPE = {"tau_fraction": 0.5, "noise_on": "wide", "noise_scale": 1e-3, "phase2_trains": "head"}


@pytest.fixture(scope="session")
def digits_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's digits, prepared with the default split."""
    path = tmp_path_factory.mktemp("data") / "digits.pt"
    data.prepare("digits", path, {"test_size": 500, "split_seed": 0})
    return path


@pytest.fixture
def tiny() -> dict:
    """Fresh copies of the tiny model, train and recipe sections."""
    return {"model": copy.deepcopy(TINY_MODEL), "train": copy.deepcopy(TINY_TRAIN), "recipe": dict(RECIPE)}
