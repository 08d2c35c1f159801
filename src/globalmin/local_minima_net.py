"""The local-minimum study's student: a fully-connected net with a linear output layer, its squared loss L, the
gradient norm ‖∇L‖ and the Jacobian J of its stacked outputs, which the projection bound reads."""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
# the kernel autograd runs for each activation's backward, given the gradient and the activation's output
BACKWARD = {torch.relu: lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0),
            torch.tanh: torch.ops.aten.tanh_backward}


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


def layer_inputs(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's input under `params`: x, then every hidden layer's output (nn.Linear's addmm, then the
    activation): the forward pass `jacobian` reads."""
    hidden = [x]
    for name in layer_names(model)[:-1]:
        hidden.append(model.act(F.linear(hidden[-1], params[f"{name}.weight"], params[f"{name}.bias"])))
    return hidden


def jacobian(model: Student, params: dict[str, torch.Tensor],
             x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, slice]]]:
    """J (n·d_out x #params), row i·d_out + o, and each layer's column block (weight and bias together).

    Back-propagation of every output written out for this fully-connected net, with the backward kernels autograd
    itself runs (ATen's threshold_backward / tanh_backward, and the same matmuls). Why not torch.func: Levenberg-
    Marquardt asks for J in every iteration, and the default study's job took several times as long with
    vmap(jacrev) of one point in its place (row `local_minima` of benchmarks/results/study-twins-cpu-2core.json;
    per call, row `jacobian` of study-kernels-cpu-2core.json). Bit-identical to jacrev of the whole batch; to
    vmap(jacrev) of one point too on some CPUs, on others within float64 rounding, as vmap batches the matmuls
    differently (tests/test_local_minima.py)."""
    depth, layers = len(model.hidden), layer_names(model)
    weights = [params[f"{name}.weight"] for name in layers]
    hidden = layer_inputs(model, params, x)
    n, d_out = x.shape[0], weights[-1].shape[0]
    grad = torch.eye(d_out, dtype=x.dtype, device=x.device).expand(n, d_out, d_out)  # d f_o / d (layer output)
    cols: list[torch.Tensor] = []
    for k in range(depth, -1, -1):
        if k < depth:  # through the activation of hidden layer k, whose output is hidden[k + 1]
            grad = BACKWARD[model.act](grad, hidden[k + 1][:, None, :].expand_as(grad))
        cols[:0] = [(grad[..., :, None] * hidden[k][:, None, None, :]).reshape(n * d_out, -1),
                    grad.reshape(n * d_out, -1)]
        if k:  # the gradient with respect to the inputs themselves is not needed
            grad = grad @ weights[k]
    blocks, start = [], 0
    for name, weight_cols, bias_cols in zip(layers, cols[::2], cols[1::2]):
        width = weight_cols.shape[1] + bias_cols.shape[1]
        blocks.append((name, slice(start, start + width)))
        start += width
    return torch.cat(cols, dim=1), blocks
