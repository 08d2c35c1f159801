"""Local minima of deep nets against the projection bound of Kawaguchi, Huang & Kaelbling (2019), claims B1-B4.

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
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from scipy import stats
from torch.func import functional_call, jacrev

from globalmin.runinfo import UserError, derive_seed

SOURCE = ("Kawaguchi, Huang & Kaelbling, Effect of Depth and Width on Local Minima in Deep Learning "
          "(Neural Computation 2019)")
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


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
               prepared_dir: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """n images of the first `classes` classes, flattened, projected to d dims, standardised; one-hot targets.

    One-hot over a few classes keeps the Jacobian at n·classes rows (all ten would multiply it by ten) while
    the targets stay real labels. digits comes from scikit-learn (offline); other data sets from the pipeline's
    prepared file `<prepared_dir>/<kind>.pt` (its training split).
    """
    if kind == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x_all, labels = torch.tensor(bunch.data / 16.0, dtype=torch.float64), torch.tensor(bunch.target)
    else:
        from globalmin import data

        path = Path(prepared_dir) / f"{kind}.pt"
        if not path.exists():
            raise UserError(f"local_minima.data lists {kind}, whose prepared file {path} does not exist; build it "
                            f"with `snakemake {path}` (needs the raw data, see README 'Data sets') or drop {kind}")
        prepared = data.load(path)
        x_all, labels = prepared.x_train.flatten(1).double(), prepared.y_train
    pool = torch.nonzero(labels < classes).flatten()
    if len(pool) < n:
        raise UserError(f"local_minima: {kind} has {len(pool)} points of classes 0..{classes - 1}, fewer than n = {n}")
    gen = torch.Generator().manual_seed(derive_seed(seed, "lm-subset", kind))
    idx = pool[torch.randperm(len(pool), generator=gen)[:n]]
    x = standardise(project(x_all[idx], d, seed))
    return x, nn.functional.one_hot(labels[idx], classes).double()


def make_data(kind: str, cfg: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (x, y) of one data kind, fixed by cfg data_seed (the seeds of the study vary only the init)."""
    if kind == "teacher":
        return teacher_data(cfg["n"], cfg["d"], cfg["d_out"], cfg["teacher_width"], cfg["teacher_noise"],
                            cfg["data_seed"])
    return image_data(kind, cfg["n"], cfg["d"], cfg["classes"], cfg["data_seed"], cfg["prepared_dir"])


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


def grad_norm(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """‖∇L‖ over all parameters."""
    p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    grads = torch.autograd.grad(loss(model, p, x, y), list(p.values()))
    return float(torch.sqrt(sum((g ** 2).sum() for g in grads)))


# ------------------------------------------------------------------------------------------- training

def first_order(model: Student, x: torch.Tensor, y: torch.Tensor, optimizer: str, lr: float, steps: int) -> None:
    """Full-batch Adam or GD on L, in place: moves the seeded init into a basin."""
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((model(x) - y) ** 2).sum()).backward()
        opt.step()


def polish_lm(model: Student, x: torch.Tensor, y: torch.Tensor, iters: int, grad_target: float) -> int:
    """Levenberg-Marquardt on the residual f(X) − y, in place; returns the iterations used.

    The natural second-order method for a sum of squares: it reuses the Jacobian the study needs anyway and
    reaches float64-level gradients in tens of steps where L-BFGS crawls (narrow deep nets). It stops when
    ‖∇L‖ <= grad_target, or when no damping gives descent (a ReLU kink, or the end of float64 precision).
    """
    yv, damping = y.reshape(-1), 1e-3
    theta = nn.utils.parameters_to_vector(model.parameters()).detach()
    value = float(loss(model, parameters(model), x, y))
    for it in range(iters):
        j, _ = jacobian(model, parameters(model), x)
        r = outputs(model, parameters(model), x).detach() - yv
        g = j.T @ r
        if float(g.norm()) <= grad_target:
            return it
        small = j @ j.T if j.shape[0] < j.shape[1] else j.T @ j  # solve in the smaller of the two spaces
        while True:
            chol, info = torch.linalg.cholesky_ex(small + damping * torch.eye(len(small), dtype=small.dtype))
            if int(info) == 0:
                # (JᵀJ + λI)⁻¹ Jᵀ r = Jᵀ (JJᵀ + λI)⁻¹ r: the same step from either side
                step = (j.T @ torch.cholesky_solve(r[:, None], chol)).flatten() if j.shape[0] < j.shape[1] \
                    else torch.cholesky_solve(g[:, None], chol).flatten()
                with torch.no_grad():
                    nn.utils.vector_to_parameters(theta - step, model.parameters())
                trial = float(loss(model, parameters(model), x, y))
                if trial < value:
                    theta, value, damping = theta - step, trial, max(damping / 3, 1e-12)
                    break
            damping *= 4
            if damping > 1e12:
                with torch.no_grad():
                    nn.utils.vector_to_parameters(theta, model.parameters())
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

def jacobian(model: nn.Module, params: dict[str, torch.Tensor],
             x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, slice]]]:
    """J (n·d_out x #params) by torch.func.jacrev, and each layer's column block (weight and bias together)."""
    jac = jacrev(lambda p: outputs(model, p, x))(params)
    cols, blocks, start = [], {}, 0
    for name, block in jac.items():
        cols.append(block.reshape(block.shape[0], -1))
        layer = name.rsplit(".", 1)[0]  # 'hidden.0', ..., 'out'
        first, _ = blocks.get(layer, (start, None))
        start += cols[-1].shape[1]
        blocks[layer] = (first, start)
    return torch.cat(cols, dim=1), [(k, slice(a, b)) for k, (a, b) in blocks.items()]


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


def dead_units(model: Student, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[float]:
    """Per hidden layer, the fraction of units inactive (pre-activation <= 0) on every input; relu only."""
    if model.act is not torch.relu:
        return [0.0] * len(model.hidden)  # a tanh unit is zero only where its pre-activation is exactly 0
    with torch.no_grad():
        return [float((z <= 0).all(dim=0).double().mean()) for z in preacts(model, params, x)]


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
    dead = dead_units(model, params, x)
    with torch.no_grad():
        closest = min(float(z.abs().min()) for z in preacts(model, params, x))
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
    start = time.perf_counter()
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
        "wall_s": time.perf_counter() - start,
    }


def run_study(cfg: dict[str, Any]) -> pd.DataFrame:
    """Data kinds x activations x depths x widths x seeds, one row per run, with the OLS and random-feature
    baselines of the run's data (and width)."""
    torch.set_num_threads(cfg["threads"])
    rows = []
    for kind in cfg["data"]:
        x, y = make_data(kind, cfg)
        ols = ols_loss(x, y)
        for activation in cfg["activations"]:
            rf = {w: random_feature_loss(x, y, w, activation, cfg["data_seed"], cfg["rf_draws"])
                  for w in cfg["widths"]}
            for depth, width, seed in itertools.product(cfg["depths"], cfg["widths"], cfg["seeds"]):
                rows.append({**run_one(kind, x, y, activation, depth, width, seed, cfg),
                             "ols_loss": ols, "rf_loss": rf[width]})
    return pd.DataFrame(rows)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per data kind, activation, depth and width: runs, certified, collapsed, median certified loss, baselines."""
    keys = ["data", "activation", "depth", "width"]
    certified = runs[runs.certified.astype(bool) & ~runs.collapsed.astype(bool)]
    table = runs.groupby(keys).agg(runs=("seed", "size"), certified=("certified", "sum"),
                                   collapsed=("collapsed", "sum"), ols_loss=("ols_loss", "first"),
                                   rf_loss=("rf_loss", "first"))
    table["median_certified_loss"] = certified.groupby(keys)["loss"].median()
    table["max_gap_certified"] = certified.groupby(keys)["gap"].max()
    return table.reset_index()


# --------------------------------------------------------------------------------------------- claims

def judged(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the verdicts read: not collapsed (collapsed runs are counted beside every verdict)."""
    return runs[~runs.collapsed.astype(bool)]


def trend(values: pd.Series, losses: pd.Series, alpha: float) -> dict[str, Any]:
    """Spearman correlation of loss with size in one slice: 'falls', 'rises' (p < alpha) or 'flat'."""
    if losses.nunique() < 2:  # all tied (e.g. every run interpolates): no ranking to test
        return {"rho": None, "p": None, "trend": "tied"}
    if len(losses) < 3:  # no p-value from two points
        return {"rho": None, "p": None, "trend": "flat"}
    rho, p = stats.spearmanr(values, losses)
    if not (np.isfinite(rho) and np.isfinite(p)):
        return {"rho": None, "p": None, "trend": "flat"}
    label = ("falls" if rho < 0 else "rises") if p < alpha else "flat"
    return {"rho": float(rho), "p": float(p), "trend": label}


def trend_slices(runs: pd.DataFrame, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """B1: per data kind and activation, the loss trend with width at each depth and with depth at each width.

    Losses below loss_floor x (the zero predictor's loss) are set to that floor, so that runs that all
    interpolate tie instead of being ranked by rounding noise.
    """
    out = []
    frame = runs.assign(loss_eff=np.maximum(runs.loss, cfg["loss_floor"] * runs.zero_loss))
    for (kind, activation), group in frame.groupby(["data", "activation"], sort=True):
        for along, fixed in (("width", "depth"), ("depth", "width")):
            for value, part in group.groupby(fixed, sort=True):
                if part[along].nunique() < 2 or len(part) < cfg["min_slice_runs"]:
                    continue
                out.append({"data": kind, "activation": activation, "along": along, fixed: int(value),
                            "runs": len(part), **trend(part[along], part.loss_eff, cfg["alpha"])})
    return out


def direction_verdict(slices: list[dict[str, Any]], along: str, fraction: float) -> dict[str, Any]:
    """Pool the slices of one direction: 'falls' (most fall, none rises), 'rises' (most rise), else 'mixed'.

    Tied slices (every loss at the floor: all at the global minimum) can neither fall nor rise; they are
    counted but left out of the fractions.
    """
    mine = [s for s in slices if s["along"] == along and s["trend"] != "tied"]
    falls = sum(s["trend"] == "falls" for s in mine)
    rises = sum(s["trend"] == "rises" for s in mine)
    verdict = ("none" if not mine else "falls" if falls >= fraction * len(mine) and not rises
               else "rises" if rises >= fraction * len(mine) else "mixed")
    return {"slices": len(mine), "falling": falls, "rising": rises, "verdict": verdict,
            "tied_at_floor": sum(s["along"] == along and s["trend"] == "tied" for s in slices)}


def b1_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """B1: the certified local-minimum loss falls with width (per depth) and with depth (per width)."""
    from globalmin.claims import make_claim

    certified = judged(runs)[judged(runs).certified.astype(bool)]
    slices = trend_slices(certified, cfg)
    directions = {a: direction_verdict(slices, a, cfg["b1_fraction"]) for a in ("width", "depth")}
    verdicts = {d["verdict"] for d in directions.values()}
    verdict = ("supported" if verdicts == {"falls"} else "not supported" if "rises" in verdicts
               else "inconclusive")
    # the same trends over every non-collapsed run, certified or not: context, not the verdict
    approximate = trend_slices(judged(runs), cfg)
    return make_claim(
        "B1", "The local-minimum loss falls as width grows (at each depth) and as depth grows (at each width).",
        SOURCE, evidence,
        {"directions": directions, "slices": slices, "certified_runs": len(certified),
         "certified_above_floor": int((certified.loss > cfg["loss_floor"] * certified.zero_loss).sum()),
         "non_collapsed_runs": len(judged(runs)), "collapsed_runs": int(runs.collapsed.sum()),
         "all_runs_directions": {a: direction_verdict(approximate, a, cfg["b1_fraction"])
                                 for a in ("width", "depth")},
         "median_certified_loss": {"/".join(map(str, k)): float(v) for k, v in
                                   certified.groupby(["data", "activation", "depth", "width"]).loss.median().items()}},
        verdict, reconstructed=True,
        rule=f"on certified (||grad L|| <= {cfg['grad_tol']:g}), non-collapsed runs, per data kind and activation: "
             f"Spearman correlation of the loss (floored at {cfg['loss_floor']:g} x the zero predictor's loss) with "
             f"width at each depth and with depth at each width, over seeds (slices with >= {cfg['min_slice_runs']} "
             f"runs and >= 2 sizes); a slice falls/rises when p < {cfg['alpha']}; slices whose losses all tie at "
             f"the floor are counted apart. Supported when, for both "
             f"directions, >= {cfg['b1_fraction']:.0%} of the slices fall and none rises; not supported when >= "
             f"{cfg['b1_fraction']:.0%} of one direction's slices rise; otherwise (or with no usable slice) "
             f"inconclusive")


def b2_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """B2: L − LB vanishes at near-critical points and shrinks with ‖∇L‖; rank J grows with size."""
    from globalmin.claims import make_claim

    # the gap relative to L, with L floored at loss_floor x the zero predictor's loss so that nets that
    # interpolate (L ~ 1e-20) do not divide rounding noise by rounding noise
    ok = judged(runs)
    ok = ok.assign(relative_gap=ok.gap / np.maximum(ok.loss, cfg["loss_floor"] * ok.zero_loss))
    certified, uncertified = ok[ok.certified.astype(bool)], ok[~ok.certified.astype(bool)]
    worst_gap = float(certified.relative_gap.max()) if len(certified) else None
    lowest = float((runs.gap / (2 * runs.zero_loss)).min())  # relative to ‖y‖², like every rounding tolerance
    # both ends of every run: after the first-order phase (far from critical) and after polishing
    pooled = pd.DataFrame({"grad": np.concatenate([ok.first_grad_norm, ok.grad_norm]),
                           "gap": np.concatenate([ok.first_gap, ok.gap])})
    gap_trend = trend(pooled.grad, pooled.gap, cfg["alpha"])
    rank_trends = {f"{k}/{a}": trend(g.n_params, g.rank_j, cfg["alpha"])
                   for (k, a), g in ok.groupby(["data", "activation"], sort=True) if g.n_params.nunique() > 1}
    rank_up = bool(rank_trends) and all(t["trend"] == "rises" for t in rank_trends.values())
    gap_bad = (worst_gap is not None and worst_gap > cfg["gap_tol"]) or lowest < -cfg["contribution_tol"]
    # the gap is at most ||grad L||^2 / (2 sigma_min^2): it must fall with the gradient
    if worst_gap is not None and not gap_bad and gap_trend["trend"] == "rises" and rank_up:
        verdict = "supported"
    elif gap_bad or any(t["trend"] == "falls" for t in rank_trends.values()):
        verdict = "not supported"
    else:
        verdict = "inconclusive"
    return make_claim(
        "B2", "L − LB → 0 as ||grad L|| → 0 (the runs are at critical points), and rank J rises with network "
        "size.",
        SOURCE, evidence,
        {"certified_runs": len(certified), "non_collapsed_runs": len(ok), "collapsed_runs": int(runs.collapsed.sum()),
         "max_relative_gap_certified": worst_gap, "gap_tolerance": cfg["gap_tol"],
         "min_gap_over_y_norm_sq": lowest, "gap_vs_grad_spearman": gap_trend, "rank_vs_params_spearman": rank_trends,
         "median_relative_gap_uncertified": float(uncertified.relative_gap.median()) if len(uncertified) else None,
         "uncertified_by_activation": uncertified.groupby("activation").size().to_dict(),
         "uncertified_relu_at_kink": int(((uncertified.activation == "relu")
                                          & (uncertified.min_abs_preact <= cfg["kink_tol"])).sum()),
         "median_max_abs_param": {"certified": float(certified.max_abs_param.median()) if len(certified) else None,
                                  "uncertified": float(uncertified.max_abs_param.median())
                                  if len(uncertified) else None}},
        verdict, reconstructed=True,
        rule=f"on non-collapsed runs: supported when every certified run has (L - LB) / max(L, "
             f"{cfg['loss_floor']:g} x zero loss) <= {cfg['gap_tol']:g}, no run has L - LB below "
             f"-{cfg['contribution_tol']:g} ||y||^2, L - LB rises with ||grad L|| (Spearman "
             f"over both ends of every run, p < "
             f"{cfg['alpha']}), and rank J rises with the parameter count for every data kind and activation "
             f"(Spearman > 0, p < {cfg['alpha']}); not supported when a certified gap exceeds the tolerance, a "
             f"gap is below -tolerance or rank J falls significantly; otherwise inconclusive. Uncertified ReLU runs "
             f"with a pre-activation within {cfg['kink_tol']:g} of 0 are counted as sitting on a kink")


def b3_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """B3: every layer's contribution to ‖P[J] y‖² is non-negative."""
    from globalmin.claims import make_claim

    ok = judged(runs)
    relative = ok.min_layer_contribution / (2 * ok.zero_loss)  # relative to ‖y‖²
    collapsed = runs[runs.collapsed.astype(bool)]
    return make_claim(
        "B3", "Each layer's contribution to ||P[J] y||^2 (adding layers from the output downward) is non-negative.",
        SOURCE, evidence,
        {"runs": len(ok), "min_relative_contribution": float(relative.min()) if len(ok) else None,
         "runs_below_tolerance": int((relative < -cfg["contribution_tol"]).sum()), "tolerance": cfg["contribution_tol"],
         "collapsed_runs": len(collapsed),
         "collapsed_min_relative_contribution": float((collapsed.min_layer_contribution
                                                       / (2 * collapsed.zero_loss)).min()) if len(collapsed) else None},
        ("supported" if (relative >= -cfg["contribution_tol"]).all() else "not supported") if len(ok)
        else "inconclusive", reconstructed=False,
        rule=f"on every non-collapsed run (certified or not: the identity holds at every parameter value), adding "
             f"parameter blocks one layer at a time from the output layer downward, each layer's increase of "
             f"||P y||^2 is >= -{cfg['contribution_tol']:g} ||y||^2 (rounding)")


def b4_claim(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    """B4: at certified minima whose col(J) contains col([X, 1]), L is no worse than linear least squares."""
    from globalmin.claims import make_claim

    ok = judged(runs)
    certified = ok[ok.certified.astype(bool)]
    covered = certified[certified.contains_linear.astype(bool)]
    beats = covered.loss <= covered.ols_loss * (1 + cfg["ols_tol"]) + cfg["loss_floor"] * covered.zero_loss
    # a J of full row rank spans everything, so L = LB = 0 there and the comparison is trivially true: only
    # runs whose J is rank-deficient test the claim
    telling = covered.rank_j < covered.jac_rows
    fraction = float(beats.mean()) if len(covered) else None
    collapsed, worse = runs[runs.collapsed.astype(bool)], ok[ok.loss > ok.ols_loss]
    if len(covered) and fraction < cfg["b4_fraction"]:
        verdict = "not supported"
    else:
        verdict = "supported" if telling.any() else "inconclusive"
    return make_claim(
        "B4", "At a local minimum whose col(J) contains col([X, 1]), L is at most the linear least-squares loss; "
        "compared also with random-feature least squares of equal feature count.",
        SOURCE, evidence,
        {"certified_runs": len(certified), "certified_containing_linear": len(covered),
         "containing_with_rank_deficient_j": int(telling.sum()), "fraction_at_or_below_ols": fraction,
         "all_runs_fraction_below_ols": float((ok.loss <= ok.ols_loss).mean()) if len(ok) else None,
         "all_runs_fraction_below_random_features": float((ok.loss <= ok.rf_loss).mean()) if len(ok) else None,
         "certified_fraction_below_random_features": float((certified.loss <= certified.rf_loss).mean())
         if len(certified) else None,
         # the failure mode of narrow ReLU nets: (partly) dead minima worse than linear regression
         "not_collapsed_worse_than_ols": [{"data": r.data, "activation": r.activation, "depth": int(r.depth),
                                           "width": int(r.width), "seed": int(r.seed), "loss": float(r.loss),
                                           "dead_fraction_max": float(r.dead_fraction_max)}
                                          for r in worse.itertuples()],
         "collapsed_runs": len(collapsed), "collapsed_worse_than_ols": int((collapsed.loss > collapsed.ols_loss).sum()),
         "ols_loss_by_data": runs.groupby("data").ols_loss.first().to_dict()},
        verdict, reconstructed=True,
        rule=f"among certified, non-collapsed runs whose col(J) contains col([X, 1] (x) I) (largest relative "
             f"residual <= {cfg['contain_tol']:g}): not supported when fewer than {cfg['b4_fraction']:.0%} have "
             f"L <= OLS x (1 + {cfg['ols_tol']:g}) (+ {cfg['loss_floor']:g} x zero loss); otherwise supported if at "
             f"least one of them has a rank-deficient J (with J of full row rank, L = LB = 0 and the comparison is "
             f"trivial), else inconclusive; the random-feature comparison and the (partly) dead runs are reported, "
             f"not judged")


def local_minima_claims(runs: pd.DataFrame, cfg: dict[str, Any], evidence: list[str]) -> list[dict[str, Any]]:
    """Verdicts for B1-B4 from the study's runs."""
    return [b1_claim(runs, cfg, evidence), b2_claim(runs, cfg, evidence), b3_claim(runs, cfg, evidence),
            b4_claim(runs, cfg, evidence)]
