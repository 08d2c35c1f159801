"""The data-set facts table is the one place a data set is described: everything else reads it and agrees."""

from __future__ import annotations

import re

import pytest
import torchvision

from conftest import REPO
from globalmin import augment, datasets, sources
from globalmin.config_checks import problems


@pytest.mark.parametrize("name", sorted(datasets.FACTS))
def test_every_data_set_is_complete_and_its_readers_exist(name):
    f = datasets.FACTS[name]
    assert f.name == name and f.note and f.description and f.channels in (1, 3) and f.classes >= 2
    assert augment.spec_for(name) is f.augmentation and f.augmentation.describe()
    if f.has_raw_files:
        cls = getattr(torchvision.datasets, f.tv_class)
        assert sources.raw_files(f.tv_class)  # URLs, names and checksums come from torchvision's class
        assert all(set(kw) <= {"train", "split"} for kw in f.tv_splits) and cls
    assert f.pooled == (f.test_size is not None)  # a pooled data set needs a default test size, a split one none


def test_sizes_under_options():
    assert datasets.n_train("digits", {}) == 1297 and datasets.n_train("digits", {"test_size": 300}) == 1497
    assert datasets.n_train("semeion", {}) == 1000 and datasets.n_train("svhn", {"train_subset": 500}) == 500
    with pytest.raises(KeyError, match="did you mean 'cifar10'"):
        datasets.facts("cifar_10")


def test_no_other_file_lists_the_data_sets():
    """Adding a data set touches datasets.py only: the schema and the config checks name none of them."""
    schema = (REPO / "workflow" / "schemas" / "config.schema.yaml").read_text()
    assert not re.search(r"enum: \[[^\]]*\bcifar10\b", schema)
    for module in ("config_checks.py", "data.py", "augment.py", "report.py", "sources.py"):
        text = (REPO / "src" / "globalmin" / module).read_text()
        assert not re.search(r'"(cifar100|kmnist|svhn|semeion)"', text), module


def test_the_datasets_command_prints_the_table(capsys):
    from globalmin.cli import main

    assert main(["datasets"]) == 0
    table = capsys.readouterr().out
    rows = re.findall(r"^\| `(\w+)`", table, flags=re.M)
    assert rows == list(datasets.FACTS) and "authors' related code" in table and "crop pad 4" in table


def test_config_checks_read_the_table(monkeypatch):
    import copy
    import dataclasses

    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    assert problems(config) == []
    added = copy.deepcopy(config)
    added["experiment"]["datasets"] = ["digits", "toy"]
    assert any("unknown data set 'toy'" in p for p in problems(added))
    monkeypatch.setitem(datasets.FACTS, "toy", dataclasses.replace(datasets.FACTS["digits"], name="toy"))
    assert problems(added) == []  # one table entry is all a new data set needs
