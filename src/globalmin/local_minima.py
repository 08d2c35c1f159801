"""Stage `local_minima`: local minima of deep nets against the projection bound of Kawaguchi, Huang & Kaelbling
(2019); the verdicts (B1, B2, B4, check B3) are in `local_minima_claims.py`.

Setting: a fully-connected student with H hidden layers of width w, biases, and a linear output layer with bias,
trained on the squared loss L(θ) = ½ Σ_i ‖f(x_i) − y_i‖², summed over points and outputs. Every loss in this
module (the bound, the baselines) uses that same normalisation. Because the output layer is linear, the stacked
outputs f(X) lie in the column space of the Jacobian J of the stacked outputs (n·d_out rows) with respect to all
parameters, so for every θ
    L(θ) ≥ LB(θ) = ½ ‖(I − P[J(θ)]) y‖²,
with equality at every differentiable critical point (there Jᵀ(f − y) = 0, so f = P y). Each run trains a seeded
student (a first-order phase, then Levenberg-Marquardt or L-BFGS polishing in float64), certifies
‖∇L‖ ≤ grad_tol or says it did not, and measures LB, rank J, per-layer contributions to ‖P y‖², linear and
random-feature least-squares baselines, and whether the net collapsed to a dead network. Uncertified and
collapsed runs are kept and reported.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from globalmin.claims import write_fragment
from globalmin.optim import SGD, Adam
from globalmin.runinfo import UserError, derive_seed, write_text

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
# the kernel autograd runs for each activation's backward, given the gradient and the activation's output
BACKWARD = {torch.relu: lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0),
            torch.tanh: torch.ops.aten.tanh_backward}


# ----------------------------------------------------------------------------------------------- data

def standardise(x: torch.Tensor) -> torch.Tensor:
    """Columns with zero mean and unit variance (constant columns are only centred)."""
    sd = x.std(dim=0)
    return (x - x.mean(dim=0)) / torch.where(sd > 0, sd, torch.ones_like(sd))


def project(x: torch.Tensor, d: int | None, seed: int) -> torch.Tensor:
    """A fixed seeded Gaussian projection to d dimensions (none when d is null or not below the input size)."""
    if d is None or d >= x.shape[1]:
        return x
    gen = torch.Generator().manual_seed(derive_seed(seed, "lm-projection", x.shape[1], d))
    return x @ torch.randn(x.shape[1], d, generator=gen, dtype=torch.float64) / math.sqrt(x.shape[1])


def teacher_data(n: int, d: int, d_out: int, width: int, noise: float,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n Gaussian inputs in d dims; standardised targets of a fixed random one-hidden-layer tanh teacher plus
    Gaussian noise of `noise` times the teacher's output standard deviation."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "lm-teacher"))
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    w1 = torch.randn(width, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    b1 = torch.randn(width, generator=gen, dtype=torch.float64) * 0.5
    w2 = torch.randn(d_out, width, generator=gen, dtype=torch.float64) / math.sqrt(width)
    # tanh keeps the teacher smooth and genuinely nonlinear, so no student size reproduces it by construction;
    # the noise makes small students' minima strictly positive while large ones can still interpolate
    clean = standardise(torch.tanh(x @ w1.T + b1) @ w2.T)
    return x, standardise(clean + noise * torch.randn(n, d_out, generator=gen, dtype=torch.float64))


def image_data(kind: str, n: int, d: int | None, classes: int, seed: int,
               prepared: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """n images of the first `classes` classes, flattened, projected to d dims, standardised; one-hot targets.

    One-hot over a few classes keeps the Jacobian at n·classes rows (all ten would multiply it by ten) while
    the targets stay real labels. The images come from the pipeline's prepared file of data set `kind` (its
    training split); `prepared` maps data set names to those files.
    """
    from globalmin import data

    if kind not in prepared:
        raise UserError(f"local_minima.data lists {kind}, but no prepared file of {kind} was given "
                        f"(--data data/prepared/{kind}.pt)")
    images = data.load(prepared[kind])
    x_all, labels = images.x_train.flatten(1).double(), images.y_train
    pool = torch.nonzero(labels < classes).flatten()
    if len(pool) < n:
        raise UserError(f"local_minima: {kind} has {len(pool)} points of classes 0..{classes - 1}, fewer than n = {n}")
    gen = torch.Generator().manual_seed(derive_seed(seed, "lm-subset", kind))
    idx = pool[torch.randperm(len(pool), generator=gen)[:n]]
    x = standardise(project(x_all[idx], d, seed))
    return x, nn.functional.one_hot(labels[idx], classes).double()


def make_data(kind: str, cfg: dict[str, Any], prepared: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (x, y) of one data kind, fixed by cfg data_seed (the seeds of the study vary only the init)."""
    if kind == "teacher":
        return teacher_data(cfg["n"], cfg["d"], cfg["d_out"], cfg["teacher_width"], cfg["teacher_noise"],
                            cfg["data_seed"])
    return image_data(kind, cfg["n"], cfg["d"], cfg["classes"], cfg["data_seed"], prepared)


# -------------------------------------------------------------------------------------------- student

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


def grad_norm(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """‖∇L‖ over all parameters, the gradient written out as the first-order phase writes it (`write_gradient`)."""
    views = gradient_views(model, torch.empty(sum(p.numel() for p in params.values()), dtype=x.dtype))
    write_gradient(model, params, x, y, views)
    return float(torch.sqrt(sum((g ** 2).sum() for layer in views for g in layer)))


def layer_names(model: Student) -> list[str]:
    """The layers' names in `params` and `model.parameters()` order: hidden.0 .. hidden.{depth-1}, out."""
    return [f"hidden.{k}" for k in range(len(model.hidden))] + ["out"]


def layer_inputs(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's input under `params`: x, then every hidden layer's output (nn.Linear's addmm, then the
    activation): the forward pass the written-out backward passes (`jacobian`, `write_gradient`) read."""
    hidden = [x]
    for name in layer_names(model)[:-1]:
        hidden.append(model.act(F.linear(hidden[-1], params[f"{name}.weight"], params[f"{name}.bias"])))
    return hidden


# ------------------------------------------------------------------------------------------- training

def views_like(model: Student, flat: torch.Tensor) -> list[torch.Tensor]:
    """`flat` cut into views shaped as the model's parameters, in `model.parameters()` order."""
    params = list(model.parameters())
    return [piece.view_as(p) for p, piece in zip(params, flat.split([p.numel() for p in params]))]


def flatten(model: Student) -> torch.Tensor:
    """One vector of all parameters, which the live parameters become views of (in `model.parameters()` order), so
    that an optimizer step or a trial step is one operation on one tensor."""
    flat = nn.utils.parameters_to_vector(model.parameters()).detach()
    for p, view in zip(model.parameters(), views_like(model, flat)):
        p.data = view
    return flat


def gradient_views(model: Student, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (weight, bias) gradient as views of `flat`, laid out as `flatten` lays out the parameters."""
    views = views_like(model, flat)
    return list(zip(views[0::2], views[1::2]))


@torch.no_grad()
def write_gradient(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   views: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """∇L under `params` written into `views` (from `gradient_views`): back-propagation written out with the
    kernels autograd runs for nn.Linear (addmm), the activation and ½‖f − y‖², so bit-identical to autograd's
    gradient (tests).

    Why not autograd: at the study's sizes (n = 96, widths up to 16) building the graph and running the engine
    cost more than the arithmetic: the first-order phase is timed both ways in
    benchmarks/results/study-kernels-cpu-2core.json, row lm_first_order."""
    names = layer_names(model)
    hidden = layer_inputs(model, params, x)
    # dL/df: autograd's 0.5 · (2 (f − y)), exact
    grad = F.linear(hidden[-1], params["out.weight"], params["out.bias"]) - y
    for k in range(len(model.hidden), -1, -1):
        weight_grad, bias_grad = views[k]
        torch.mm(grad.t(), hidden[k], out=weight_grad)  # autograd's mm for addmm's transposed weight, transposed
        torch.sum(grad, 0, out=bias_grad)
        if k:  # through layer k's weight and the activation whose output is hidden[k]
            grad = BACKWARD[model.act](grad.mm(params[f"{names[k]}.weight"]), hidden[k])


def first_order(model: Student, x: torch.Tensor, y: torch.Tensor, optimizer: str, lr: float, steps: int) -> None:
    """Full-batch Adam or GD on L, in place: moves the seeded init into a basin. The optimizer updates the one vector
    the parameters view: elementwise updates, so the same bits as updating each tensor (tests)."""
    flat = flatten(model)
    params = dict(model.named_parameters())  # the live parameters, views of flat
    grad = torch.empty_like(flat)
    views = gradient_views(model, grad)
    opt = Adam([flat], lr=lr) if optimizer == "adam" else SGD([flat], lr=lr)  # torch.optim's, see optim.py
    for _ in range(steps):
        write_gradient(model, params, x, y, views)
        opt.step([grad])


@torch.no_grad()
def polish_lm(model: Student, x: torch.Tensor, y: torch.Tensor, iters: int, grad_target: float) -> int:
    """Levenberg-Marquardt on the residual f(X) − y, in place; returns the iterations used.

    The natural second-order method for a sum of squares: it reuses the Jacobian the study needs anyway and
    reaches float64-level gradients in tens of steps where L-BFGS crawls (narrow deep nets). It stops when
    ‖∇L‖ <= grad_target, or when no damping gives descent (a ReLU kink, or the end of float64 precision).
    """
    yv, damping = y.reshape(-1), 1e-3
    # The live parameters become views of one vector, so that a trial step is one subtraction written into it
    # (nn.utils.vector_to_parameters rebinds every tensor, a third of this loop's time at the study's sizes).
    flat = flatten(model)
    params = dict(model.named_parameters())  # the live parameters: each trial step is written into them

    def residual() -> torch.Tensor:
        return model(x).reshape(-1) - yv  # the same arithmetic as outputs() and loss(), without their copies

    theta, r = flat.clone(), residual()
    value = float(0.5 * (r ** 2).sum())
    for it in range(iters):
        j, _ = jacobian(model, params, x)  # r is the residual at theta: the accepted trial's, or the first
        g = j.T @ r
        if float(g.norm()) <= grad_target:
            return it
        small = j @ j.T if j.shape[0] < j.shape[1] else j.T @ j  # solve in the smaller of the two spaces
        while True:
            damped = small.clone()
            damped.diagonal().add_(damping)  # small + λI, with the same bits as adding λ times the identity
            chol, info = torch.linalg.cholesky_ex(damped)
            if int(info) == 0:
                # (JᵀJ + λI)⁻¹ Jᵀ r = Jᵀ (JJᵀ + λI)⁻¹ r: the same step from either side
                step = (j.T @ torch.cholesky_solve(r[:, None], chol)).flatten() if j.shape[0] < j.shape[1] \
                    else torch.cholesky_solve(g[:, None], chol).flatten()
                torch.sub(theta, step, out=flat)
                trial_r = residual()
                trial = float(0.5 * (trial_r ** 2).sum())
                if trial < value:
                    theta, r, value, damping = flat.clone(), trial_r, trial, max(damping / 3, 1e-12)
                    break
            damping *= 4
            if damping > 1e12:
                flat.copy_(theta)
                return it
    return iters


def polish_lbfgs(model: Student, x: torch.Tensor, y: torch.Tensor, iters: int, grad_target: float) -> int:
    """L-BFGS with a strong-Wolfe line search, in place; returns the iterations used."""
    # tolerance_change 0: L-BFGS's default (1e-9, absolute) would stop long before float64 precision
    opt = torch.optim.LBFGS(list(model.parameters()), lr=1.0, max_iter=iters, max_eval=2 * iters,
                            tolerance_grad=grad_target, tolerance_change=0.0, history_size=50,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = 0.5 * ((model(x) - y) ** 2).sum()
        value.backward()
        return value

    opt.step(closure)
    return int(opt.state[opt._params[0]].get("n_iter", 0))


def train(model: Student, x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any]) -> dict[str, Any]:
    """First-order phase, then polishing toward a critical point (in place); the state after the first phase
    (to measure L − LB away from criticality too) and the polishing iterations used."""
    first_order(model, x, y, cfg["optimizer"], cfg["lr"], cfg["steps"])
    after_first = parameters(model)
    # polish a decade past the certificate so that certified runs are not borderline
    polish = polish_lm if cfg["polish"] == "lm" else polish_lbfgs
    used = polish(model, x, y, cfg["polish_iters"], cfg["grad_tol"] * 0.1) if cfg["polish_iters"] else 0
    return {"after_first": after_first, "polish_iters_used": used}


# ------------------------------------------------------------------------------------------ measuring

def jacobian(model: Student, params: dict[str, torch.Tensor],
             x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, slice]]]:
    """J (n·d_out x #params), row i·d_out + o, and each layer's column block (weight and bias together).

    Back-propagation of every output written out for this fully-connected net, with the backward kernels autograd
    itself runs (ATen's threshold_backward / tanh_backward, and the same matmuls). Why not torch.func: LM asks for
    J many thousand times in the default study, and vmap(jacrev) of one point spends most of each call in
    dispatch (both timed in benchmarks/results/study-kernels-cpu-2core.json, row jacobian). Bit-identical to jacrev
    of the whole batch; to vmap(jacrev) of one point too on some CPUs, on others within float64 rounding, as
    vmap batches the matmuls differently (tests/test_local_minima.py)."""
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


def rank_tolerance(j: torch.Tensor, rtol: float) -> float:
    """Singular values at or below rtol·σ_max(J) count as zero (one absolute tolerance for J and its sub-blocks)."""
    return float(rtol * torch.linalg.matrix_norm(j, ord=2)) if j.numel() else 0.0


def basis(a: torch.Tensor, tol: float) -> torch.Tensor:
    """Orthonormal basis of col(A): left singular vectors whose singular values exceed `tol`."""
    if a.shape[1] == 0:
        return a.new_zeros(a.shape[0], 0)
    u, s, _ = torch.linalg.svd(a, full_matrices=False)
    return u[:, s > tol]


def projection(a: torch.Tensor, y: torch.Tensor, tol: float) -> tuple[torch.Tensor, int]:
    """P[A] y and rank A; y is stacked to A's rows (a vector for J, the n x d_out matrix Y for [X, 1])."""
    u = basis(a, tol)
    y = y.reshape(a.shape[0], -1)
    return u @ (u.T @ y), int(u.shape[1])


def projection_energy(a: torch.Tensor, y: torch.Tensor, tol: float) -> tuple[float, int]:
    """‖P[A] y‖² and rank A."""
    py, rank = projection(a, y, tol)
    return float((py ** 2).sum()), rank


def residual_loss(a: torch.Tensor, y: torch.Tensor, tol: float) -> float:
    """½ ‖(I − P[A]) y‖²: the least-squares loss of regressing y on the columns of A (residual formed directly,
    not as ½‖y‖² − ½‖P y‖², which would cancel catastrophically when the fit is nearly exact)."""
    py, _ = projection(a, y, tol)
    return 0.5 * float(((y.reshape(py.shape) - py) ** 2).sum())


def layer_contributions(j: torch.Tensor, blocks: list[tuple[str, slice]], y: torch.Tensor,
                        tol: float) -> list[float]:
    """B3: add layer blocks from the output layer downward; each layer's increase of ‖P y‖² (output first)."""
    done, values, previous = [], [], 0.0
    for _, cols in reversed(blocks):
        done.append(j[:, cols])
        energy, _ = projection_energy(torch.cat(done, dim=1), y, tol)
        values.append(energy - previous)
        previous = energy
    return values


def with_ones(x: torch.Tensor) -> torch.Tensor:
    """[X, 1]."""
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def per_output(a: torch.Tensor, d_out: int) -> torch.Tensor:
    """A ⊗ I_{d_out}: the same regressors for every output, in the stacked (point-major) order."""
    return torch.kron(a, torch.eye(d_out, dtype=a.dtype))


def ols_loss(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear least squares on [X, 1], each output separately (½ ‖(I − P[[X, 1]]) Y‖²_F)."""
    a = with_ones(x)
    return residual_loss(a, y, rank_tolerance(a, 1e-12))


def random_features(x: torch.Tensor, m: int, activation: str, seed: int) -> torch.Tensor:
    """[φ(X Wᵀ + b), 1] with fixed W ~ N(0, 1/d), b ~ N(0, 1): m random features plus a bias column."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(m, x.shape[1], generator=gen, dtype=torch.float64) / math.sqrt(x.shape[1])
    b = torch.randn(m, generator=gen, dtype=torch.float64)
    return with_ones(ACTIVATIONS[activation](x @ w.T + b))


def random_feature_loss(x: torch.Tensor, y: torch.Tensor, m: int, activation: str, seed: int, draws: int) -> float:
    """Least squares on m random features (as many as the net's last hidden layer) plus bias, mean over draws."""
    losses = []
    for draw in range(draws):
        a = random_features(x, m, activation, derive_seed(seed, "lm-rf", m, draw))
        losses.append(residual_loss(a, y, rank_tolerance(a, 1e-12)))
    return float(np.mean(losses))


def linear_residual(u: torch.Tensor, x: torch.Tensor, d_out: int) -> float:
    """Largest relative residual of a column of [X, 1] ⊗ I_{d_out} after projecting onto span(u) (0: contained)."""
    a = per_output(with_ones(x), d_out)
    rest = a - u @ (u.T @ a)
    return float((rest.norm(dim=0) / a.norm(dim=0).clamp_min(1e-300)).max())


def preacts(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden pre-activations under the given parameters."""
    pre = []
    for k in range(len(model.hidden)):
        pre.append(x @ params[f"hidden.{k}.weight"].T + params[f"hidden.{k}.bias"])
        x = model.act(pre[-1])
    return pre


def dead_units(model: Student, pre: list[torch.Tensor]) -> list[float]:
    """Per hidden layer, the fraction of units inactive (pre-activation <= 0) on every input; relu only."""
    if model.act is not torch.relu:
        return [0.0] * len(pre)  # a tanh unit is zero only where its pre-activation is exactly 0
    return [float((z <= 0).all(dim=0).double().mean()) for z in pre]


def measure(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
            rank_rtol: float, contain_tol: float) -> dict[str, Any]:
    """Everything measured at one parameter value: L, LB, the gap, ‖∇L‖, rank J, B3 contributions, containment."""
    j, blocks = jacobian(model, params, x)
    tol = rank_tolerance(j, rank_rtol)
    u = basis(j, tol)
    py = u @ (u.T @ y.reshape(-1))
    energy, rank = float((py ** 2).sum()), int(u.shape[1])
    value = float(loss(model, params, x, y))
    lb = 0.5 * float(((y.reshape(-1) - py) ** 2).sum())
    contributions = layer_contributions(j, blocks, y, tol)
    residual = linear_residual(u, x, y.shape[1])
    with torch.no_grad():
        pre = preacts(model, params, x)
    dead = dead_units(model, pre)
    closest = min(float(z.abs().min()) for z in pre)
    return {"loss": value, "lower_bound": lb, "gap": value - lb, "grad_norm": grad_norm(model, params, x, y),
            "rank_j": rank, "jac_rows": j.shape[0], "projection_energy": energy,
            "layer_contributions": json.dumps(contributions), "min_layer_contribution": float(min(contributions)),
            "linear_residual": residual, "contains_linear": residual <= contain_tol,
            "dead_fraction_max": float(max(dead)), "collapsed": bool(max(dead) == 1.0),
            # smallest |pre-activation| over units and points: near 0 a ReLU net sits on a kink, where L is
            # not differentiable and the equality L = LB is not promised
            "min_abs_preact": closest,
            # largest |parameter|: tanh nets that drift toward saturation have no finite critical point to reach
            "max_abs_param": float(max(v.abs().max() for v in params.values()))}


# ---------------------------------------------------------------------------------------------- study

def run_one(kind: str, x: torch.Tensor, y: torch.Tensor, activation: str, depth: int, width: int, seed: int,
            cfg: dict[str, Any]) -> dict[str, Any]:
    """Train one student and measure it after the first-order phase and after polishing; one self-describing row."""
    model = build_student(x.shape[1], width, depth, y.shape[1], activation,
                          derive_seed(seed, "lm-init", kind, activation, depth, width))
    trained = train(model, x, y, cfg)
    early = measure(model, trained["after_first"], x, y, cfg["rank_rtol"], cfg["contain_tol"])
    final = measure(model, parameters(model), x, y, cfg["rank_rtol"], cfg["contain_tol"])
    scale = 0.5 * float((y ** 2).sum())
    return {
        "data": kind, "n": len(x), "d": x.shape[1], "d_out": y.shape[1], "depth": depth, "width": width,
        "seed": seed, "activation": activation, "n_params": sum(p.numel() for p in model.parameters()),
        **final, "certified": final["grad_norm"] <= cfg["grad_tol"],
        "zero_loss": scale,  # ½‖y‖², the loss of the zero predictor: the scale of every tolerance
        "first_loss": early["loss"], "first_gap": early["gap"], "first_grad_norm": early["grad_norm"],
        "polish_iters_used": trained["polish_iters_used"],
    }


def run_study(cfg: dict[str, Any], prepared: dict[str, str]) -> pd.DataFrame:
    """Data kinds x activations x depths x widths x seeds, one row per run, with the OLS and random-feature
    baselines of the run's data (and width)."""
    rows = []
    for kind in cfg["data"]:
        x, y = make_data(kind, cfg, prepared)
        ols = ols_loss(x, y)
        for activation in cfg["activations"]:
            rf = {w: random_feature_loss(x, y, w, activation, cfg["data_seed"], cfg["rf_draws"])
                  for w in cfg["widths"]}
            for depth, width, seed in itertools.product(cfg["depths"], cfg["widths"], cfg["seeds"]):
                rows.append({**run_one(kind, x, y, activation, depth, width, seed, cfg),
                             "ols_loss": ols, "rf_loss": rf[width]})
    return pd.DataFrame(rows)


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """The study of cfg (the local_minima section) on inputs['data'] (prepared files of the image data kinds) into
    outputs['out_dir']: runs.csv, summary.csv/.html and claims.json."""
    from globalmin import local_minima_claims

    out = Path(outputs["out_dir"])
    prepared = {Path(p).stem: str(p) for p in inputs.get("data", [])}
    runs = run_study(cfg, prepared)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    table = local_minima_claims.summary_table(runs)
    write_text(out / "summary.csv", table.to_csv(index=False))
    write_text(out / "summary.html", table.to_html(index=False, classes="table", border=0, float_format="%.3g",
                                                   na_rep="–"))
    write_fragment(out / "claims.json", "local_minima",
                   local_minima_claims.judge(runs, cfg, [str(out / "runs.csv")]))
