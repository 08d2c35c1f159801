"""base as any torch.optim optimizer: the catalogue read from torch's source, the config's checks, building."""

from __future__ import annotations

import inspect

import pytest
import torch

from globalmin import optimizers
from globalmin.runinfo import UserError


def test_the_catalogue_read_from_torch_source_is_what_inspect_sees():
    """The Snakefile reads torch.optim's classes without importing torch; the imported classes must agree."""
    found = optimizers.catalogue()
    expected = {name.lower() for name in torch.optim.__all__
                if inspect.isclass(getattr(torch.optim, name)) and issubclass(getattr(torch.optim, name),
                                                                             torch.optim.Optimizer)}
    assert set(found) == expected - {"optimizer", "lbfgs", "sparseadam"}
    for name, info in found.items():
        signature = inspect.signature(getattr(torch.optim, info.cls).__init__).parameters
        keywords = {k: p.default for k, p in signature.items() if k not in ("self", "params", "lr")}
        assert list(info.defaults) == list(keywords), name
        for key, default in keywords.items():
            if isinstance(info.defaults[key], str) and not isinstance(default, str):
                continue  # a default that is a name in torch's source (Muon's constants): shown as its source
            assert info.defaults[key] == (None if default is inspect.Parameter.empty else default), (name, key)


def test_unknown_names_keywords_and_lr_get_one_line_each():
    assert optimizers.problems({"name": "sgd", "momentum": 0.9}) == []
    [line] = optimizers.problems({"name": "adm"})
    assert line.startswith("train.optimizer.name = 'adm' is not a torch.optim optimizer; did you mean 'adam'?")
    assert "adamw" in line and "rmsprop" in line and "\n" not in line
    [line] = optimizers.problems({"name": "adam", "beta": [0.9, 0.99]}, "conditions.adam.optimizer")
    assert line.startswith("conditions.adam.optimizer.beta: torch.optim.Adam has no keyword 'beta' (did you mean "
                           "'betas'?")
    [line] = optimizers.problems({"name": "SGD", "lr": 0.1})
    assert "train.optimizer.lr" in line and "train.lr" in line


def test_build_gives_the_torch_class_and_refuses_bad_values_in_one_line():
    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd = optimizers.build(params, {"name": "sgd", "momentum": 0.9, "nesterov": True}, lr=0.1)
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["lr"] == 0.1
    adam = optimizers.build(params, {"name": "adam", "betas": [0.8, 0.9]}, lr=1e-3)  # YAML lists become tuples
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["betas"] == (0.8, 0.9)
    with pytest.raises(UserError, match=r"train.optimizer = .*torch.optim.Adam refuses it \(Invalid beta"):
        optimizers.build(params, {"name": "adam", "betas": [1.5, 0.9]}, lr=1e-3)
    with pytest.raises(UserError, match="is not a torch.optim optimizer"):
        optimizers.build(params, {"name": "lbfgs"}, lr=1.0)


def test_weight_decay_is_an_l2_term_only_where_the_optimizer_couples_it():
    assert optimizers.l2_weight({"name": "sgd", "weight_decay": 1e-4}) == 1e-4
    assert optimizers.l2_weight({"name": "adam"}) == 0.0
    assert optimizers.l2_weight({"name": "adamw"}) is None  # decoupled, and its default is 0.01
    assert optimizers.l2_weight({"name": "adam", "weight_decay": 1e-4, "decoupled_weight_decay": True}) is None


def test_records_from_before_train_optimizer_mean_the_same_sgd():
    legacy = {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False}
    assert optimizers.settings_of(legacy) == {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4,
                                              "nesterov": False}
    assert optimizers.settings_of({"optimizer": {"name": "adam"}}) == {"name": "adam"}
