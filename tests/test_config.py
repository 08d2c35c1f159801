"""The config: the schema, short messages for unknown keys and YAML errors, and the cross-key checks."""

from __future__ import annotations

import functools
import operator

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, merged
from globalmin.config_checks import coerce_strings, problems, schema_errors, unknown_keys, yaml_problem

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def _default() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _validated(over: dict | None = None) -> dict:
    config = merged(_default(), over or {})
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
    ({"train": {"milestones": {"plain": [20, 40]}}},
     "train.milestones.plain = [40] at or beyond train.epochs.plain = 30"),
    ({"experiment": {"conditions": ["standard", "random_label"]}},
     "unknown condition 'random_label'; did you mean 'random_labels'"),
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
    ({"train": {"optimizer": {"name": "adm"}}}, "train.optimizer.name = 'adm' is not a torch.optim optimizer; did "
                                               "you mean 'adam'?"),
    ({"train": {"optimizer": {"name": "sgd", "momentun": 0.9}}}, "torch.optim.SGD has no keyword 'momentun' (did you "
                                                                 "mean 'momentum'?"),
    ({"conditions": {"adam": {"optimizer": {"name": "adam", "lr": 0.1}}}}, "conditions.adam.optimizer.lr: the "
                                                                           "learning rate comes from train.lr"),
    ({"width_sweep": {"bases": ["standrd"]}}, "width_sweep.bases: unknown condition 'standrd'"),
    ({"width_sweep": {"seeds": [9]}}, "width_sweep.seeds lists [9]"),
    ({"recipe": {"tau_ablation": {"conditions": ["standard", "half_width"]}}}, "recipe.tau_ablation.conditions "
                                                                                "lists half_width"),
    ({"experiment": {"datasets": ["mine"]}}, "or give your own with data.mine: {source: folder | arrays"),
    ({"data": {"mine": {"source": "folder", "path": "/nonexistent/mine"}}}, "data.mine.path = /nonexistent/mine "
                                                                            "does not exist"),
    ({"data": {"mnist": {"source": "folder", "path": "."}}}, "data.mnist.source = folder is for your own data set"),
    ({"data": {"digits": {"path": "x"}}}, "data.digits: path do not apply to digits"),
    ({"model": {"widths": [4, 8], "blocks": [1, 1]}}, "model.widths = [4, 8] has a stage of 4 channels before a "
                                                      "strided one"),
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
    assert [wide_width({"wide_width": w}, 1297) for w in ("3n/4", "3n/2", "n", "2n", 40)] == [973, 1946, 1297, 2594, 40]


def test_a_user_data_set_without_augmentation_cannot_run_augmented(tmp_path):
    import numpy as np

    np.savez(tmp_path / "mine.npz", x_train=np.zeros((30, 8, 8), np.uint8), y_train=np.arange(30) % 3)
    mine = {"source": "arrays", "path": str(tmp_path / "mine.npz")}
    over = {"experiment": {"datasets": ["mine"]}, "data": {"mine": mine}, "recipe": {"tau_ablation": {"datasets": []}}}
    found = problems(_validated(over))
    assert any("data.mine.augmentation is not set but experiment.augmentation runs with augmentation" in p
               for p in found), found
    over["data"]["mine"] = {**mine, "augmentation": {"crop_pad": 1}}
    assert problems(_validated(over)) == []


def test_the_width_sweep_expands_into_conditions_and_reuses_a_matching_one():
    from globalmin.conditions import expand, sweep_points

    config = _validated()
    points = {(p["loss"], p["ratio"]): p for p in sweep_points(config)}
    assert points[("cross_entropy", "n")]["condition"] == "random_labels" and not points[("cross_entropy", "n")][
        "generated"]  # the same labels, width, loss and optimizer: its runs are read, none added
    assert points[("squared", "3n/4")]["condition"] == "sweep_standard_sq_3n4"
    expanded = expand(config)
    added = [c for c in expanded["experiment"]["conditions"] if c not in config["experiment"]["conditions"]]
    assert len(added) == 11 and expanded["conditions"]["sweep_standard_sq_n8"] == {
        "labels": "random", "label_seed": None, "wide_width": "n/8", "loss": "squared",
        "optimizer": config["train"]["optimizer"],
        "lr": 0.01, "augmentation": [False], "seeds": [0]}
    assert config["experiment"]["conditions"] == ["standard", "adam", "random_labels"]


@pytest.mark.parametrize("path, text, expected", [
    (("recipe", "tau_fraction"), "0.75", 0.75),      # Snakemake 9's reading of recipe='{tau_fraction: 0.75}'
    (("train", "epochs", "plain"), "5", 5),
    (("train", "bf16"), "true", True),
    (("model", "wide_width"), "32", 32),             # integer, 'n/k' or null: '32' matches no pattern, 32 is valid
    (("model", "wide_width"), "null", None),
    (("recipe", "noise_scale"), "1e-4", 1e-4),       # PyYAML reads 1e-4 (no dot) as a string; float() does not
    (("model", "wide_width"), "n/2", "n/2"),         # strings the schema accepts stay strings
    (("report", "title"), "2024", "2024"),
    (("recipe", "certificate_scratch"), "null", "null"),  # a string or null: the string is accepted as it is
    (("recipe", "optimum", "max_n"), "1.5e3", "1.5e3"),   # no float where the schema wants an integer
    (("train", "lr"), "nan", "nan"),                 # no NaN, which passes every bound unnoticed
    (("train", "lr"), "fast", "fast"),
])
def test_strings_are_read_as_the_type_the_schema_wants(path, text, expected):
    config = _default()
    *parents, last = path
    section = functools.reduce(operator.getitem, parents, config)
    section[last] = text
    changed = coerce_strings(config, yaml.safe_load(open(SCHEMA)))
    assert section[last] == expected and type(section[last]) is type(expected)
    assert changed == ([".".join(path)] if expected != text else [])


def test_coerced_strings_then_validate_or_fail_as_numbers():
    schema = yaml.safe_load(open(SCHEMA))
    config = _default()
    config["experiment"]["seeds"] = ["0", "1"]               # --config experiment='{seeds: [0, 1]}'
    config["conditions"]["random_labels"]["seeds"] = ["0"]
    assert sorted(coerce_strings(config, schema)) == ["conditions.random_labels.seeds.0", "experiment.seeds.0",
                                                      "experiment.seeds.1"]
    assert config["experiment"]["seeds"] == [0, 1] and schema_errors(config, schema) == []
    config["recipe"]["tau_fraction"] = "1.5"
    coerce_strings(config, schema)
    assert schema_errors(config, schema) == [
        "recipe.tau_fraction = 1.5: 1.5 is greater than or equal to the maximum of 1 (exclusiveMaximum; allowed: "
        "{'exclusiveMinimum': 0, 'exclusiveMaximum': 1, 'type': 'number'})"]
