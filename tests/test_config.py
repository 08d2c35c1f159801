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
