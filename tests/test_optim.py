"""globalmin.optim against torch.optim: the same updates bit for bit, the same state_dict, no torch._dynamo import."""

import pytest
import torch

from conftest import fresh_python
from globalmin.optim import SGD, Adam


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))


def _train(model: torch.nn.Module, optimizer, steps: int, frozen: tuple[str, ...] = (), lrs=None) -> None:
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(2))
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    for k in range(steps):
        if lrs is not None:
            for group in optimizer.param_groups:
                group["lr"] = lrs[k]
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("momentum, weight_decay, nesterov", [(0.9, 1e-4, False), (0.9, 0.0, True), (0.0, 1e-3, False)])
def test_sgd_matches_torch_sgd_bit_for_bit(momentum, weight_decay, nesterov):
    ours, theirs = _net(), _net()
    kwargs = {"lr": 0.1, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov}
    lrs = [0.1] * 4 + [0.01] * 4  # the schedule sets param_groups[0]["lr"] between steps
    _train(ours, SGD(list(ours.parameters()), **kwargs), 8, lrs=lrs)
    reference = torch.optim.SGD(theirs.parameters(), **kwargs)
    _train(theirs, reference, 8, lrs=lrs)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_sgd_state_dict_is_torch_sgds_and_loads_both_ways():
    ours, theirs = _net(), _net()
    mine = SGD(list(ours.parameters()), lr=0.1, momentum=0.9, weight_decay=1e-4)
    reference = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    _train(ours, mine, 3, frozen=("0.bias",))  # a parameter without a gradient has no momentum buffer
    _train(theirs, reference, 3, frozen=("0.bias",))
    a, b = mine.state_dict(), reference.state_dict()
    assert a["param_groups"] == b["param_groups"] and list(a["state"]) == list(b["state"]) == [0, 2, 3]
    assert all(torch.equal(a["state"][i]["momentum_buffer"], b["state"][i]["momentum_buffer"]) for i in a["state"])

    # resume ours from torch's state and torch's from ours: the next steps stay identical
    resumed = SGD(list(ours.parameters()), lr=0.5)
    resumed.load_state_dict(b)
    assert resumed.param_groups[0]["lr"] == 0.1 and resumed.state_dict()["state"].keys() == b["state"].keys()
    back = torch.optim.SGD(theirs.parameters(), lr=0.5)
    back.load_state_dict(a)
    _train(ours, resumed, 3)
    _train(theirs, back, 3)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(p, q)


def test_sgd_refuses_a_state_of_another_shape():
    model = _net()
    other = SGD(list(model.parameters())[:2], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="one group of 4"):
        SGD(list(model.parameters()), lr=0.1).load_state_dict(other.state_dict())


def test_adam_matches_torch_adam_bit_for_bit():  # torch.optim.Adam on the CPU: the per-tensor loop
    ours, theirs = _net(3), _net(3)
    _train(ours, Adam(list(ours.parameters()), lr=0.01), 10)
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=0.01), 10)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_training_and_the_run_record_do_not_import_torch_dynamo():
    code = ("import sys, torch\n"
            "from globalmin.optim import SGD, Adam\n"
            "from globalmin.runinfo import environment\n"
            "m = torch.nn.Linear(3, 2)\n"
            "for opt in (SGD(list(m.parameters()), lr=0.1, momentum=0.9), Adam(list(m.parameters()), lr=0.1)):\n"
            "    opt.zero_grad(); m(torch.ones(4, 3)).sum().backward(); opt.step()\n"
            "assert environment(torch.device('cpu'))['torchvision']\n"
            "print(sorted(k for k in ('torch._dynamo', 'torchvision', 'sympy') if k in sys.modules))\n")
    assert fresh_python(code) == "[]"
