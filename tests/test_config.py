"""The config schema: the shipped configs validate, bad values fail with the key's name."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def _default() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_shipped_configs_validate():
    validate(_default(), SCHEMA)
    merged = _default()
    merged.update(yaml.safe_load((REPO / "config" / "test.yaml").read_text()))
    validate(merged, SCHEMA)


def test_defaults_fill_missing_sections():
    config = {"experiment": {"seeds": [0]}}
    validate(config, SCHEMA)
    assert config["recipe"]["tau_fraction"] == 0.9 and config["train"]["batch_size"] == 64
    assert config["model"]["wide_width"] is None and config["data"]["digits"]["test_size"] == 500


@pytest.mark.parametrize("path, value, message", [
    (("recipe", "tau_fraction"), 1.0, "exclusiveMaximum"),
    (("recipe", "tau_fraction"), 0, "exclusiveMinimum"),
    (("train", "lr"), "fast", "is not of type 'number'"),
    (("recipe", "phase2_trains"), "everything", "is not one of"),
    (("experiment", "datasets"), ["imagenet"], "is not one of"),
    (("train", "typo_key"), 1, "Additional properties are not allowed"),
])
def test_bad_values_fail_naming_the_key(path, value, message):
    config = copy.deepcopy(_default())
    config[path[0]][path[1]] = value
    with pytest.raises(WorkflowError, match=message) as info:
        validate(config, SCHEMA)
    assert path[0] in str(info.value)


def _validated(**sections) -> dict:
    config = _default()
    for key, value in sections.items():
        config[key] = {**config[key], **value}
    validate(config, SCHEMA)
    return config


def test_cross_key_checks_name_the_keys_and_the_fix():
    from globalmin.config_checks import n_train, problems

    assert problems(_validated()) == []
    (narrow,) = problems(_validated(model={"wide_width": 1000}))
    assert "model.wide_width = 1000 is below n = 1297" in narrow and "model.require_expressivity: false" in narrow
    assert problems(_validated(model={"wide_width": 1000, "require_expressivity": False})) == []
    assert problems(_validated(model={"wide_width": 1297})) == []
    config = _validated(experiment={"datasets": ["mnist"]}, recipe={"tau_ablation": {"datasets": ["cifar10"],
                                                                                     "fractions": [0.9]}})
    config["data"]["mnist"]["source"] = "import"
    found = " | ".join(problems(config))
    assert "data.mnist.import_dir is not set" in found and "lists cifar10, which is not in experiment.datasets" in found
    assert "repeats recipe.tau_fraction (0.9)" in found
    assert n_train("semeion", {"test_size": 593}) == 1000 and n_train("svhn", {"train_subset": 500}) == 500


def test_model_refuses_a_wide_layer_narrower_than_n():
    from globalmin.models import build_model
    from globalmin.runinfo import UserError

    with pytest.raises(UserError, match="model.wide_width = 10 is below n = 50"):
        build_model({"widths": [4], "blocks": [1], "wide_width": 10}, 1, 10, 50)
    assert build_model({"widths": [4], "blocks": [1], "wide_width": 10, "require_expressivity": False},
                       1, 10, 50).wide.out_features == 10
