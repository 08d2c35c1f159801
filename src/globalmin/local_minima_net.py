"""The local-minimum study's student: a fully-connected net with a linear output layer, its squared loss L, the
gradient norm ‖∇L‖ and the Jacobian J of its stacked outputs, which the projection bound reads."""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn
from torch.func import functional_call, jacrev, vmap

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
# the kernel autograd runs for each activation's backward, given the gradient and the activation's output
class Student(nn.Module):
    """Fully-connected net: `depth` hidden layers of `width` units (relu or tanh), linear output, all with bias."""

    def __init__(self, d: int, width: int, depth: int, d_out: int, activation: str = "relu"):
        super().__init__()
        sizes = [d] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b, dtype=torch.float64) for a, b in itertools.pairwise(sizes))
        self.out = nn.Linear(sizes[-1], d_out, dtype=torch.float64)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs, n x d_out."""
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)


def build_student(d: int, width: int, depth: int, d_out: int, activation: str, seed: int) -> Student:
    """A student with PyTorch's default Linear init drawn from a seeded generator (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Student(d, width, depth, d_out, activation)


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the parameters, keyed as functional_call expects."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def outputs(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Stacked outputs f(X) flattened point-major (row i·d_out + o), the order of y.reshape(-1)."""
    return functional_call(model, params, (x,)).reshape(-1)


def loss(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = ½ Σ_i ‖f(x_i) − y_i‖² (summed over points and outputs)."""
    return 0.5 * ((outputs(model, params, x) - y.reshape(-1)) ** 2).sum()


def grad_norm(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """‖∇L‖ over all parameters (torch.func.grad of `loss`)."""
    grads = torch.func.grad(lambda p: loss(model, p, x, y))(params)
    return float(torch.sqrt(sum((g ** 2).sum() for g in grads.values())))


def layer_names(model: Student) -> list[str]:
    """The layers' names in `params` and `model.parameters()` order: hidden.0 .. hidden.{depth-1}, out."""
    return [f"hidden.{k}" for k in range(len(model.hidden))] + ["out"]


def jacobian(model: Student, params: dict[str, torch.Tensor],
             x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, slice]]]:
    """J (n·d_out x #params), row i·d_out + o, and each layer's column block (weight and bias together), by
    torch.func's vmap(jacrev) of one point. A written-out backward pass saved less than 5 % of the default DAG's
    wall time (row `local_minima`, key `jacobian`, of benchmarks/results/study-twins-cpu-2core.json), so the
    library's form it is."""
    def one_point(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (xi[None],)).reshape(-1)

    per_point = vmap(jacrev(one_point), in_dims=(None, 0))(params, x)  # name -> (n, d_out, *parameter shape)
    rows = x.shape[0] * model.out.out_features
    layers, start = [], 0
    for name in layer_names(model):
        width = per_point[f"{name}.weight"][0, 0].numel() + per_point[f"{name}.bias"][0, 0].numel()
        layers.append((name, slice(start, start + width)))
        start += width
    return torch.cat([per_point[name].reshape(rows, -1) for name in params], dim=1), layers
