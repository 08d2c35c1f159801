"""The config: the schema, short messages for unknown keys and YAML errors, and the cross-key checks."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO
from globalmin.config_checks import problems, unknown_keys, yaml_problem

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def _default() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


def _validated(over: dict | None = None) -> dict:
    config = _merge(_default(), over or {})
    validate(config, SCHEMA)
    return config


@pytest.mark.parametrize("name", ["test.yaml", "paper.yaml"])
def test_shipped_configs_validate_and_pass_the_checks(name):
    over = yaml.safe_load((REPO / "config" / name).read_text())
    if name == "paper.yaml":  # its largest job needs 46 GiB on a CPU (SVHN's Phi alone is 40 GiB; resources.py):
        over["resources"] = {"memory_gb": 64}  # checked as for a 64 GiB machine (tests/test_resources.py: refusals)
    config = _validated(over)
    assert unknown_keys(config, yaml.safe_load(open(SCHEMA))) == [] and problems(config) == []


def test_defaults_fill_missing_sections():
    config = {"experiment": {"seeds": [0]}}
    validate(config, SCHEMA)
    assert config["recipe"]["tau_fraction"] == 0.9 and config["train"]["batch_size"] == 64
    assert config["model"]["wide_width"] is None and config["conditions"]["standard"]["labels"] == "dataset"
    assert config["claims"]["equivalence_margin_pp"] == 0.5 and config["recipe"]["optimum"]["error_bound"] == 1e-7


@pytest.mark.parametrize("path, value, message", [
    (("recipe", "tau_fraction"), 1.0, "exclusiveMaximum"),
    (("recipe", "tau_fraction"), 0, "exclusiveMinimum"),
    (("train", "lr"), "fast", "is not of type 'number'"),
    (("recipe", "phase2_trains"), "everything", "is not one of"),
    (("model", "wide_width"), "n/two", "does not match"),
])
def test_bad_values_fail_naming_the_key(path, value, message):
    config = _default()
    config[path[0]][path[1]] = value
    with pytest.raises(WorkflowError, match=message) as info:
        validate(config, SCHEMA)
    assert path[1] in str(info.value)


def test_unknown_keys_get_one_short_line_with_the_closest_name():
    config = _default()
    config["recipe"]["tau_fractoin"] = 0.5
    config["data"]["digits"]["train_subst"] = 10
    config["traing"] = {}
    found = unknown_keys(config, yaml.safe_load(open(SCHEMA)))
    assert sorted(found) == ["unknown key 'tau_fractoin' in recipe; did you mean 'tau_fraction'?",
                             "unknown key 'train_subst' in data.digits; did you mean 'train_subset'?",
                             "unknown key 'traing' in the top level; did you mean 'train'?"]
    assert all(len(line) < 120 for line in found)


def test_refused_values_get_one_line_each_naming_the_key():
    from globalmin.config_checks import schema_errors

    config = _default()
    config["recipe"]["tau_fraction"] = 1.5
    config["train"]["lr"] = "fast"
    found = schema_errors(config, yaml.safe_load(open(SCHEMA)))
    assert len(found) == 2 and found[0].startswith("recipe.tau_fraction = 1.5:") and "exclusiveMaximum" in found[0]
    assert found[1].startswith("train.lr = 'fast':") and "\n" not in "".join(found)
    assert schema_errors(_default(), yaml.safe_load(open(SCHEMA))) == []


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe:\n  tau_fraction: 0.5\n   noise_on: [wide\n")
    message = yaml_problem(bad)
    assert message.startswith(f"{bad}: YAML syntax error at line 3") and "\n" not in message
    assert yaml_problem(REPO / "config" / "config.yaml") is None


@pytest.mark.parametrize("over, expected", [
    ({"model": {"wide_width": 1000}}, "model.wide_width = 1000 gives m_H = 1000, below n = 1297"),
    ({"model": {"wide_width": "n/2"}}, "m_H = 648, below n = 1297"),
    ({"model": {"widths": [16, 32], "blocks": [1]}}, "model.widths has 2 stages but model.blocks has 1"),
    ({"train": {"milestones": {"plain": [20, 40]}}}, "train.milestones.plain = [40] at or beyond train.epochs.plain = 30"),
    ({"experiment": {"conditions": ["standard", "random_label"]}}, "unknown condition 'random_label'; did you mean 'random_labels'"),
    ({"conditions": {"random_labels": {"seeds": [7]}}}, "conditions.random_labels.seeds lists [7]"),
    ({"experiment": {"datasets": ["digit"]}}, "unknown data set 'digit'; did you mean 'digits'"),
    ({"data": {"digits": {"source": "import"}}}, "data.digits: source do not apply to digits"),
    ({"data": {"mnist": {"test_size": 10}}}, "data.mnist: test_size do not apply to mnist"),
    ({"data": {"digits": {"test_size": 1797}}}, "data.digits.test_size = 1797 must be between 1 and 1796"),
    ({"data": {"semeion": {"source": "import"}}}, "data.semeion.import_dir is not set"),
    ({"recipe": {"tau_ablation": {"datasets": ["cifar10"]}}}, "lists cifar10, which is not in experiment.datasets"),
    ({"recipe": {"tau_ablation": {"fractions": [0.9]}}}, "repeats recipe.tau_fraction (0.9)"),
    ({"local_minima": {"data": ["teacher", "mnst"]}}, "unknown data kind 'mnst'; did you mean 'mnist'"),
    ({"fc_theory": {"n": 1500}}, "fc_theory.n = 1500 digits inputs, but digits has 1297"),
])
def test_cross_key_checks_name_the_keys_and_the_fix(over, expected):
    found = problems(_validated(over))
    assert any(expected in p for p in found), found


def test_a_deliberate_control_is_allowed():
    assert problems(_validated({"model": {"wide_width": 1000, "require_expressivity": False}})) == []
    assert problems(_validated({"conditions": {"random_labels": {"wide_width": 32}}})) == []


def test_model_refuses_a_wide_layer_narrower_than_n():
    from globalmin.models import build_model, wide_width
    from globalmin.runinfo import UserError

    with pytest.raises(UserError, match="model.wide_width = 10 is below n = 50"):
        build_model({"widths": [4], "blocks": [1], "wide_width": 10}, 1, 10, 50)
    assert wide_width({"wide_width": "n/2"}, 1297) == 648 and wide_width({"wide_width": None}, 7) == 7
