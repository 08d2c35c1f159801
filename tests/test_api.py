"""The Recipe as a library: locating the layers, widening, certifying, and A(base) on any model and optimizer."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from globalmin import Recipe, RecipeError, certify, certify_model, locate, widen

N, CLASSES = 48, 4


def _data(shape=(3, 16, 16), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((N, *shape), generator=gen), torch.randint(0, CLASSES, (N,), generator=gen)


def resnet() -> nn.Module:
    """torchvision's resnet18 (random init, no download), widened to m_H = n."""
    torch.manual_seed(0)
    x, _ = _data()
    return widen(torchvision.models.resnet18(num_classes=CLASSES), N, example=x[:2])


def mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 32), nn.ReLU(), nn.Linear(32, 2 * N), nn.Tanh(),
                         nn.Linear(2 * N, CLASSES))


class OutOfOrder(nn.Module):
    """The head is declared first, the wide layer last: only the forward pass says which is which."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.out = nn.Linear(N, CLASSES)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.1)
        self.first = nn.Linear(8, N)

    def forward(self, x):
        z = F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1)
        return self.out(self.drop(torch.tanh(self.first(z))))


class Scaled(OutOfOrder):
    def forward(self, x):
        return 2.0 * super().forward(x)  # post-processed after the last Linear


def test_the_layers_are_found_by_the_forward_pass_and_names_win():
    x, _ = _data()
    assert locate(resnet(), x[:2]).__dict__ == {"wide": "fc.wide", "head": "fc.head"}
    assert locate(mlp(), x[:2]).__dict__ == {"wide": "3", "head": "5"}
    assert locate(OutOfOrder(), x[:2]).__dict__ == {"wide": "first", "head": "out"}
    assert locate(mlp(), x[:2], wide="1").wide == "1"


def test_a_model_whose_output_is_not_its_head_is_refused_with_the_reason():
    x, _ = _data()
    with pytest.raises(RecipeError, match="the model's output is not its head 'out''s output"):
        locate(Scaled(), x[:2])
    with pytest.raises(RecipeError, match="calls no nn.Linear before its head 'fc'; use globalmin.api.widen"):
        locate(torchvision.models.resnet18(num_classes=CLASSES), x[:2])
    with pytest.raises(RecipeError, match="no nn.Linear named 'nothing'"):
        locate(mlp(), x[:2], head="nothing")


def test_widening_resnet18_makes_the_certificate_pass_where_512_features_cannot():
    torch.manual_seed(0)
    x = torch.rand(600, 3, 8, 8)
    plain = torchvision.models.resnet18(num_classes=CLASSES)
    short = certify_model(plain, x)
    assert short.m_H == 512 and not short.full_rank  # 512 features cannot have rank 600
    wide = certify_model(widen(plain, 600, example=x[:2]), x)
    assert wide.n == wide.m_H == 600 and wide.full_rank and wide.rank == 600
    assert "rank n certified" in str(wide) and "NOT certified" in str(short)


def test_certify_is_exact_on_a_matrix_and_typed():
    cert = certify(torch.eye(5, 7, dtype=torch.float64) * torch.arange(1, 6, dtype=torch.float64)[:, None])
    assert (cert.n, cert.m_H, cert.rank, cert.full_rank) == (5, 7, 5, True)
    assert cert.sigma_min == pytest.approx(1.0) and cert.sigma_max == pytest.approx(5.0)
    assert cert.as_dict()["method"].startswith("exact SVD")


def _train(model, optimizer, recipe, x, y, steps, seed=0, on_step=None, start=0):
    """Steps start..steps-1 of a user's loop; the mini-batches of the steps before `start` are drawn and skipped, as
    a resumed run's loader would."""
    gen = torch.Generator().manual_seed(seed)
    for it in range(steps):
        idx = torch.randint(0, N, (16,), generator=gen)
        if it < start:
            continue
        model.train()  # a user's loop calls this every epoch: pinned batch norm must survive it
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recipe.step()
        if on_step:
            on_step(it + 1)


@pytest.mark.parametrize("make", [resnet, mlp, OutOfOrder], ids=["resnet18", "mlp", "out_of_order"])
@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw"])
def test_after_tau_only_the_head_moves_and_the_features_have_rank_n(make, opt):
    x, y = _data()
    model = make()
    kwargs = {"sgd": {"momentum": 0.9, "weight_decay": 1e-3}, "adam": {}, "adamw": {"weight_decay": 0.5}}[opt]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt]
    optimizer = cls(model.parameters(), lr=1e-2 if opt == "sgd" else 1e-3, **kwargs)  # Adam at 1e-2 saturates tanh
    recipe = Recipe(model, optimizer, tau=3, cert_loader=x, seed=5)
    head = recipe.layers.head
    seen = {}

    def snapshot(it):
        if it == 3:
            seen["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
            seen["buffers"] = {n: b.clone() for n, b in model.named_buffers()}

    _train(model, optimizer, recipe, x, y, 8, on_step=snapshot)
    assert recipe.switched and recipe.certificate.full_rank and recipe.certificate.n == N
    for name, p in model.named_parameters():
        moved = not torch.equal(p, seen["params"][name])
        assert moved == name.startswith(head + "."), name  # AdamW's decay of 0.5 would move every frozen weight
    for name, b in model.named_buffers():  # batch-norm statistics and counters, through model.train() calls
        assert torch.equal(b, seen["buffers"][name]), name
    assert len(optimizer.state) == 2 and sum(len(g["params"]) for g in optimizer.param_groups) == 2


def test_the_switch_keeps_the_optimizer_its_state_and_an_attached_scheduler():
    x, y = _data()
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    recipe = Recipe(model, optimizer, tau=2, cert_loader=torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=10))
    head_weight = model.get_submodule(recipe.layers.head).weight
    _train(model, optimizer, recipe, x, y, 2)
    momentum = optimizer.state[head_weight]["momentum_buffer"].clone()
    assert recipe.switched and torch.count_nonzero(momentum)  # base's momentum kept for the head
    for _ in range(4):
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)


def test_resume_across_tau_is_bit_identical():
    x, y = _data()
    reference = resnet()
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    recipe = Recipe(reference, optimizer, tau=3, cert_loader=x, seed=1)
    saved = {}

    def save(it):
        if it == 5:
            saved.update(model=copy.deepcopy(reference.state_dict()), optimizer=copy.deepcopy(optimizer.state_dict()),
                         recipe=copy.deepcopy(recipe.state_dict()))

    _train(reference, optimizer, recipe, x, y, 8, on_step=save)
    resumed = resnet()
    optimizer2 = torch.optim.Adam(resumed.parameters(), lr=1e-3)
    recipe2 = Recipe(resumed, optimizer2, tau=3, cert_loader=x, seed=1)
    resumed.load_state_dict(saved["model"])
    recipe2.load_state_dict(saved["recipe"])  # before the optimizer's: it holds only the head's parameters now
    optimizer2.load_state_dict(saved["optimizer"])
    assert recipe2.switched and recipe2.certificate == recipe.certificate
    _train(resumed, optimizer2, recipe2, x, y, 8, start=5)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_optimizer_must_hold_the_head():
    x, _ = _data()
    model = mlp()
    with pytest.raises(RecipeError, match=r"the optimizer does not hold \['5.weight', '5.bias'\]"):
        Recipe(model, torch.optim.SGD(model[1].parameters(), lr=0.1), tau=1, cert_loader=x)


def test_globalmin_certify_on_a_user_model_and_an_array_file(tmp_path, capsys):
    import json
    import sys

    import numpy as np

    from globalmin.cli import main

    (tmp_path / "mymodel.py").write_text(
        "import torch.nn as nn, torch\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 90), nn.Tanh(), nn.Linear(90, 3))\n"
        "def narrow():\n"
        "    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 50), nn.Tanh(), nn.Linear(50, 3))\n")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pts.npz", x=rng.integers(0, 256, (80, 8, 8), dtype=np.uint8), y=np.arange(80) % 3)
    old = Path.cwd()
    try:
        os.chdir(tmp_path)
        assert main(["certify", "--model", "mymodel:build", "--data", "pts.npz", "--out", "c.json"]) == 0
        assert "rank n certified" in capsys.readouterr().out
        record = json.loads((tmp_path / "c.json").read_text())
        # every point of a file without a train/test split
        assert record["n"] == 80 and record["m_H"] == 90 and record["full_rank"]
        assert main(["certify", "--model", "mymodel:narrow", "--data", "pts.npz"]) == 0
        assert "NOT certified" in capsys.readouterr().out  # 50 features, 80 points
        assert main(["certify", "--model", "mymodel:missing", "--data", "pts.npz"]) == 1
    finally:
        os.chdir(old)
        sys.modules.pop("mymodel", None)
