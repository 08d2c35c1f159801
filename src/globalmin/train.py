"""Training: the first-order algorithm `base`, and the Recipe's `A(base)` that branches from base's state at tau.

Every random draw of a run comes from its one seed through `derive_seed`: the initialisation, the shuffle of
each epoch, the augmentation of each iteration and the perturbation at tau. None of them depends on
generator state carried between iterations, so a run can be branched (A(base) at tau) at any iteration and
still draw exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from globalmin import augment as aug
from globalmin import data as datamod
from globalmin.certificate import certify_model, choose_method
from globalmin.models import WideHeadResNet, build_model, parameter_groups
from globalmin.runinfo import (UserError, derive_seed, environment, generator, resolve_device, save_torch,
                               write_json, write_text)

log = logging.getLogger(__name__)

TAU_STATE_FORMAT = "globalmin-tau-state-1"
RESUME_FILE = "last.pt"  # per-epoch state in the run folder; undeclared, so a failed job leaves it for the rerun
PHASE2_TRAINS = {"head": ("head",), "wide_head": ("wide", "head"), "all": ("body", "wide", "head")}
NOISE_ON = {"wide": ("wide",), "all_hidden": ("body", "wide"), "none": ()}


class DivergenceError(UserError):
    """The training objective became NaN or infinite."""


class CheckpointError(UserError):
    """A checkpoint or tau-state file is missing, truncated or of the wrong kind."""


@dataclass(frozen=True)
class Schedule:
    """Iteration bookkeeping shared by base and A(base): T total iterations, phase 2 from tau."""

    epochs: int
    iters_per_epoch: int
    tau: int

    @property
    def total(self) -> int:
        """T, the total number of iterations (the same for base and A(base))."""
        return self.epochs * self.iters_per_epoch


def make_schedule(n_train: int, batch_size: int, epochs: int, tau_fraction: float) -> Schedule:
    """Iterations per epoch (the last batch may be short) and tau = round(tau_fraction * T), kept in [1, T-1]."""
    ipe = math.ceil(n_train / batch_size)
    total = epochs * ipe
    if total < 2:
        raise ValueError(f"a run needs at least 2 iterations to have two phases, got T={total}; raise train.epochs")
    return Schedule(epochs, ipe, min(max(1, round(tau_fraction * total)), total - 1))


def epochs_for(train_cfg: dict[str, Any], augmented: bool) -> tuple[int, list[int]]:
    """(epochs, lr milestones) for an augmented or plain run: the paper trains longer with augmentation."""
    key = "augmented" if augmented else "plain"
    return int(train_cfg["epochs"][key]), list(train_cfg["milestones"][key])


def lr_at(iteration: int, schedule: Schedule, train_cfg: dict[str, Any], milestones: list[int]) -> float:
    """Step schedule: lr * gamma^(number of milestones reached). Stateless, so both phases share it exactly."""
    epoch = iteration // schedule.iters_per_epoch
    return train_cfg["lr"] * train_cfg["lr_gamma"] ** sum(epoch >= m for m in milestones)


class Batches:
    """Mini-batch indices of iteration `it`: epoch e's order is a permutation drawn from (seed, 'shuffle', e)."""

    def __init__(self, seed: int, n: int, batch_size: int, schedule: Schedule):
        self.seed, self.n, self.batch_size, self.schedule = seed, n, batch_size, schedule
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def __call__(self, it: int) -> torch.Tensor:
        epoch, k = divmod(it, self.schedule.iters_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=generator(self.seed, "shuffle", epoch))
        return self._perm[k * self.batch_size:(k + 1) * self.batch_size]


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: datamod.Prepared, batch_size: int = 2048) -> dict[str, float]:
    """Full training-set objective (mean cross-entropy, un-augmented, eval mode) and train/test error in %."""
    was_training = model.training
    model.eval()
    out = {}
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        loss, wrong = 0.0, 0
        for i in range(0, len(y), batch_size):
            logits = model(x[i:i + batch_size]).float()
            loss += F.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
            wrong += (logits.argmax(1) != y[i:i + batch_size]).sum().item()
        out[f"{split}_error"] = 100.0 * wrong / len(y)
        if split == "train":
            out["train_objective"] = loss / len(y)
    model.train(was_training)
    return out


@dataclass
class RunContext:
    """Everything one training run needs besides the model and optimizer."""

    run_id: str
    algorithm: str
    seed: int
    data: datamod.Prepared
    train_cfg: dict[str, Any]
    schedule: Schedule
    milestones: list[int]
    augment: aug.AugmentSpec | None
    device: torch.device

    def __post_init__(self) -> None:
        self.batches = Batches(self.seed, self.data.n_train, self.train_cfg["batch_size"], self.schedule)
        self.rows: list[dict[str, Any]] = []

    def log_row(self, model: torch.nn.Module, iteration: int, phase: int, lr: float) -> dict[str, Any]:
        """Evaluate and append one curve row; stop the run if the objective is not finite."""
        row = {"algorithm": self.algorithm, "seed": self.seed, "iteration": iteration,
               "epoch": iteration / self.schedule.iters_per_epoch, "phase": phase, "lr": lr,
               **evaluate(model, self.data, self.train_cfg["eval_batch_size"])}
        if not math.isfinite(row["train_objective"]):
            raise DivergenceError(
                f"run {self.run_id}: training objective is {row['train_objective']} at iteration {iteration} "
                f"(epoch {row['epoch']:.2f}); lower train.lr or check the data (inputs must be in [0, 1])")
        self.rows.append(row)
        log.info("%s it %d/%d epoch %.2f objective %.4f train err %.2f%% test err %.2f%%", self.run_id, iteration,
                 self.schedule.total, row["epoch"], row["train_objective"], row["train_error"], row["test_error"])
        return row


def sgd_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ctx: RunContext, it: int) -> None:
    """One iteration of `base`: a (possibly augmented) mini-batch, cross-entropy, an optimizer step."""
    idx = ctx.batches(it).to(ctx.device)
    x, y = ctx.data.x_train[idx], ctx.data.y_train[idx]
    if ctx.augment is not None:
        x = aug.augment(x, ctx.augment, generator(ctx.seed, "augment", it))
    for group in optimizer.param_groups:
        group["lr"] = lr_at(it, ctx.schedule, ctx.train_cfg, ctx.milestones)
    use_bf16 = ctx.train_cfg["bf16"] and ctx.device.type == "cuda"
    with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def run_iterations(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ctx: RunContext, start: int,
                   stop: int, phase: int, before: Callable[[int], None] | None = None,
                   epoch_end: Callable[[int], None] | None = None) -> None:
    """Iterations [start, stop), logging a curve row at every epoch end; `before(it)` runs ahead of each step
    and `epoch_end(it)` after each epoch's row (with `it` the number of iterations done)."""
    ipe = ctx.schedule.iters_per_epoch
    for it in tqdm(range(start, stop), desc=ctx.run_id, disable=not sys.stderr.isatty(), leave=False):
        if before is not None:
            before(it)
        sgd_step(model, optimizer, ctx, it)
        if (it + 1) % ipe == 0:
            ctx.log_row(model, it + 1, phase, lr_at(it, ctx.schedule, ctx.train_cfg, ctx.milestones))
            if epoch_end is not None:
                epoch_end(it + 1)


def fingerprint(obj: Any) -> str:
    """A stable hash of a run's identity (config, seed, data set, ...), to match a resume file to its run."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class Resume:
    """The per-epoch resume file of one run: written atomically, read back only by the same run."""

    def __init__(self, out_dir: Path, run_id: str, identity: Any):
        self.path, self.run_id, self.key = out_dir / RESUME_FILE, run_id, fingerprint(identity)
        self.elapsed = 0.0  # wall seconds spent before the resumed attempt
        self.extra: dict[str, Any] = {}  # results computed once per run (A(base)'s certificate), kept across resumes

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, ctx: RunContext, iteration: int,
             started: float) -> None:
        """Record the state after `iteration` iterations."""
        save_torch(self.path, {"run_id": self.run_id, "fingerprint": self.key, "iteration": iteration,
                               "rows": ctx.rows, "elapsed": self.elapsed + time.perf_counter() - started,
                               "extra": self.extra,
                               "model": model.state_dict(), "optimizer": optimizer.state_dict()})

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, ctx: RunContext,
             needed: Callable[[int], list[Path]] = lambda it: []) -> int | None:
        """Restore a matching resume file into model, optimizer and curve; the iteration to go on from, or None."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # a file cut short is never trusted: start over
            log.warning("%s: ignoring unreadable %s (%s); starting over", self.run_id, self.path, err)
            return None
        missing = [str(p) for p in needed(state.get("iteration", 0)) if not p.exists()]
        if state.get("fingerprint") != self.key or missing:
            why = f"missing {', '.join(missing)}" if missing else "it was written by a different config or run"
            log.warning("%s: not resuming from %s (%s); starting over", self.run_id, self.path, why)
            return None
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ctx.rows, self.elapsed, self.extra = state["rows"], state["elapsed"], state.get("extra", {})
        log.info("%s: resuming from iteration %d of %d (%s)", self.run_id, state["iteration"], ctx.schedule.total,
                 self.path)
        return state["iteration"]


def make_optimizer(params: list[torch.nn.Parameter], train_cfg: dict[str, Any]) -> torch.optim.SGD:
    """`base`'s optimizer: SGD with momentum and weight decay (lr is set per iteration by the schedule)."""
    return torch.optim.SGD(params, lr=train_cfg["lr"], momentum=train_cfg["momentum"],
                           weight_decay=train_cfg["weight_decay"], nesterov=train_cfg["nesterov"])


def init_base(data: datamod.Prepared, seed: int, model_cfg: dict[str, Any], train_cfg: dict[str, Any],
              device: torch.device) -> tuple[WideHeadResNet, torch.optim.SGD]:
    """The network initialised from (seed, 'init') and base's optimizer over all its parameters."""
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(model_cfg, data.x_train.shape[1], data.classes, data.n_train).to(device)
    return model, make_optimizer(list(model.parameters()), train_cfg)


def setup(data_path: str | Path, augmented: bool, train_cfg: dict[str, Any], tau_fraction: float,
          threads: int | None = None) -> tuple[datamod.Prepared, Schedule, list[int], torch.device]:
    """Load the data onto the run's device and derive the iteration schedule shared by base and A(base)."""
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(train_cfg["device"])
    data = datamod.load(data_path).to(device)
    epochs, milestones = epochs_for(train_cfg, augmented)
    schedule = make_schedule(data.n_train, train_cfg["batch_size"], epochs, tau_fraction)
    return data, schedule, milestones, device


def tau_state_name(tau_fraction: float | None = None) -> str:
    """File name of a tau-state: `tau_state.pt` at the configured tau, `tau_state_<f>.pt` for an ablation tau."""
    return "tau_state.pt" if tau_fraction is None else f"tau_state_{tau_fraction:g}.pt"


def _run_id(dataset: str, augmented: bool, seed: int, algorithm: str) -> str:
    return f"{dataset}/{'aug' if augmented else 'noaug'}/seed{seed}/{algorithm}"


def train_base(data_path: str | Path, out_dir: str | Path, seed: int, augmented: bool, model_cfg: dict[str, Any],
               train_cfg: dict[str, Any], tau_fraction: float, threads: int | None = None,
               ablation_fractions: tuple[float, ...] = (), certificate_method: str = "auto",
               certificate_scratch: str | None = None) -> dict[str, Any]:
    """Run `base` for T iterations; save the full state at tau (and at each ablation tau), the final model,
    the curve and metrics. A(base) runs branch from these states, so phase 1 is trained once for all of them."""
    start_time = time.perf_counter()
    out_dir = Path(out_dir)
    data, schedule, milestones, device = setup(data_path, augmented, train_cfg, tau_fraction, threads)
    run_id = _run_id(data.name, augmented, seed, "base")
    model, optimizer = init_base(data, seed, model_cfg, train_cfg, device)
    ctx = RunContext(run_id, "base", seed, data, train_cfg, schedule, milestones,
                     aug.spec_for(data.name) if augmented else None, device)
    config = {"model": model_cfg, "train": train_cfg, "tau_fraction": tau_fraction}
    meta = {"run_id": run_id, "dataset": data.name, "augment": augmented, "seed": seed,
            "schedule": asdict(schedule), "config": config}

    stops: dict[int, list[tuple[float, str]]] = {}
    for frac, name in [(tau_fraction, tau_state_name())] + [(f, tau_state_name(f)) for f in ablation_fractions]:
        tau = make_schedule(data.n_train, train_cfg["batch_size"], schedule.epochs, frac).tau
        stops.setdefault(tau, []).append((frac, name))

    def save_tau_state(it: int) -> None:
        if it not in stops:
            return
        if it == schedule.tau and it % schedule.iters_per_epoch:  # mid-epoch: a curve row at tau (epoch ends have one)
            ctx.log_row(model, it, 1, lr_at(it - 1, schedule, train_cfg, milestones))
        for frac, name in stops[it]:
            save_torch(out_dir / name, {
                "format": TAU_STATE_FORMAT, **meta, "schedule": {**asdict(schedule), "tau": it},
                "iteration": it, "tau_fraction": frac, "param_names": [n for n, _ in model.named_parameters()],
                "model": model.state_dict(), "optimizer": optimizer.state_dict()})

    resume = Resume(out_dir, run_id, {**meta, "stops": stops})
    certify_init(model, data, out_dir, run_id, certificate_method, train_cfg["eval_batch_size"],
                 certificate_scratch)
    model.train()
    start = resume.load(model, optimizer, ctx, lambda it: [out_dir / n for tau, s in stops.items() if tau < it
                                                           for _, n in s])
    if start is None:
        start = 0
        ctx.log_row(model, 0, 1, lr_at(0, schedule, train_cfg, milestones))
    run_iterations(model, optimizer, ctx, start, schedule.total, phase=1, before=save_tau_state,
                   epoch_end=lambda it: resume.save(model, optimizer, ctx, it, start_time))
    return _finish(model, ctx, out_dir, {**meta, "algorithm": "base", "tau_fraction": tau_fraction,
                                         "tau_ablation": False, "m_H": model.wide.out_features},
                   start_time - resume.elapsed, resume)


def certify_init(model: WideHeadResNet, data: datamod.Prepared, out_dir: Path, run_id: str,
                 method: str = "auto", batch_size: int = 1024, scratch: str | None = None) -> dict[str, Any]:
    """The expressivity certificate of the initial network (batch norm with its initial statistics)."""
    certificate = certify_model(model, data.x_train, choose_method(data.n_train, method), batch_size, scratch)
    certificate.update(run_id=run_id, stage="init", iteration=0)
    write_json(out_dir / "certificate_init.json", certificate)
    return certificate


def load_tau_state(path: str | Path) -> dict[str, Any]:
    """Read base's tau-state, with a clear error for a missing, truncated or foreign file."""
    path = Path(path)
    fix = f"delete it and rerun the base run that writes it (`snakemake {path}`)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"tau-state {path} does not exist; {fix}") from err
    except Exception as err:
        raise CheckpointError(f"tau-state {path} is unreadable ({type(err).__name__}: {err}); {fix}") from err
    if not isinstance(state, dict) or state.get("format") != TAU_STATE_FORMAT:
        raise CheckpointError(f"{path} is not a globalmin tau-state ({TAU_STATE_FORMAT}); {fix}")
    return state


@torch.no_grad()
def perturb(model: WideHeadResNet, noise_on: str, scale: float, seed: int) -> list[str]:
    """Add N(0, (scale * std(W))^2) noise to the chosen layers' weights and biases (W: that layer's weight).

    Draws on the CPU from (seed, 'perturb') so the perturbation is reproducible on every device.
    """
    gen = generator(seed, "perturb")
    params = dict(model.named_parameters())
    targets = [n for role in NOISE_ON[noise_on] for n in parameter_groups(model)[role]]
    for name in targets:
        p = params[name]
        ref = params.get(name.rsplit(".", 1)[0] + ".weight", p)
        std = ref.float().std().item() if ref.numel() > 1 else ref.abs().item()
        p.add_((torch.randn(p.shape, generator=gen, dtype=torch.float32) * (scale * std)).to(p.device, p.dtype))
    return targets


def _phase2_optimizer(model: WideHeadResNet, state: dict[str, Any], trains: str,
                      train_cfg: dict[str, Any]) -> tuple[torch.optim.SGD, list[str]]:
    """Freeze all but the phase-2 parameters; a fresh SGD on them that keeps base's momentum buffers."""
    groups = parameter_groups(model)
    names = [n for role in PHASE2_TRAINS[trains] for n in groups[role]]
    order = [n for n, _ in model.named_parameters() if n in names]
    params = dict(model.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in names)
    optimizer = make_optimizer([params[n] for n in order], train_cfg)
    old = state["optimizer"]["state"]
    index = {n: i for i, n in enumerate(state["param_names"])}
    carried = {i: old[index[n]] for i, n in enumerate(order) if index[n] in old}
    sd = optimizer.state_dict()
    sd["state"] = carried
    optimizer.load_state_dict(sd)
    return optimizer, order


def train_recipe(data_path: str | Path, tau_state_path: str | Path, out_dir: str | Path, recipe_cfg: dict[str, Any],
                 threads: int | None = None) -> dict[str, Any]:
    """A(base): from base's tau-state, BN to eval, perturb, certify, then `base` on the phase-2 parameters to T."""
    start_time = time.perf_counter()
    out_dir = Path(out_dir)
    state = load_tau_state(tau_state_path)
    model_cfg, train_cfg = state["config"]["model"], state["config"]["train"]
    seed, augmented = state["seed"], state["augment"]
    tau_fraction = state["tau_fraction"]
    data, schedule, milestones, device = setup(data_path, augmented, train_cfg, tau_fraction, threads)
    if asdict(schedule) != state["schedule"]:
        raise CheckpointError(f"tau-state {tau_state_path} was made for schedule {state['schedule']}, "
                              f"but this data and config give {asdict(schedule)}; rerun the base run")
    ablation = tau_fraction != state["config"]["tau_fraction"]
    run_id = _run_id(data.name, augmented, seed, f"recipe_tau{tau_fraction:g}" if ablation else "recipe")
    model = build_model(model_cfg, data.x_train.shape[1], data.classes, data.n_train).to(device)
    model.load_state_dict(state["model"])
    model.eval()  # batch norm statistics are fixed for all of phase 2
    optimizer, trained = _phase2_optimizer(model, state, recipe_cfg["phase2_trains"], train_cfg)
    ctx = RunContext(run_id, "recipe", seed, data, train_cfg, schedule, milestones,
                     aug.spec_for(data.name) if augmented else None, device)
    resume = Resume(out_dir, run_id, {"tau_state": {k: state[k] for k in ("run_id", "iteration", "config")},
                                      "recipe": recipe_cfg})
    start = resume.load(model, optimizer, ctx)
    if start is not None and "certificate" not in resume.extra:  # written by an older version: start over
        log.warning("%s: %s holds no certificate; starting phase 2 over", run_id, resume.path)
        model.load_state_dict(state["model"])
        optimizer, trained = _phase2_optimizer(model, state, recipe_cfg["phase2_trains"], train_cfg)
        ctx.rows, resume.elapsed, start = [], 0.0, None
    if start is None:
        start = schedule.tau  # a fresh start: the transition at tau, then the first curve row
        perturbed = perturb(model, recipe_cfg["noise_on"], recipe_cfg["noise_scale"], seed)
        method = choose_method(data.n_train, recipe_cfg.get("certificate_method", "auto"))
        resume.extra["certificate"] = {
            **certify_model(model, data.x_train, method, train_cfg["eval_batch_size"],
                            recipe_cfg.get("certificate_scratch")), "run_id": run_id, "stage": "tau",
            "iteration": schedule.tau, "perturbed": perturbed, "noise_scale": recipe_cfg["noise_scale"]}
        ctx.log_row(model, schedule.tau, 2, lr_at(schedule.tau, schedule, train_cfg, milestones))
    certificate = resume.extra["certificate"]  # resumed runs reuse it: the perturbed model is in the resume file
    write_json(out_dir / "certificate.json", certificate)
    run_iterations(model, optimizer, ctx, start, schedule.total, phase=2,
                   epoch_end=lambda it: resume.save(model, optimizer, ctx, it, start_time))
    meta = {"run_id": run_id, "algorithm": "recipe", "tau_fraction": tau_fraction, "tau_ablation": ablation,
            "dataset": data.name, "augment": augmented, "seed": seed,
            "schedule": asdict(schedule), "m_H": model.wide.out_features, "phase2_parameters": trained,
            "config": {**state["config"], "recipe": recipe_cfg}, "certificate": certificate}
    return _finish(model, ctx, out_dir, meta, start_time - resume.elapsed, resume)


def _finish(model: torch.nn.Module, ctx: RunContext, out_dir: Path, meta: dict[str, Any],
            start_time: float, resume: Resume) -> dict[str, Any]:
    """Write the final model, the curve CSV and the self-describing metrics JSON; drop the resume file."""
    save_torch(out_dir / "model.pt", {"run_id": ctx.run_id, "config": meta["config"], "seed": ctx.seed,
                                      "model": model.state_dict()})
    write_text(out_dir / "curve.csv", rows_to_csv(ctx.rows))
    metrics = {**meta, "n_train": ctx.data.n_train, "final": {k: ctx.rows[-1][k] for k in
               ("train_objective", "train_error", "test_error")},
               "environment": environment(ctx.device), "wall_seconds": time.perf_counter() - start_time}
    write_json(out_dir / "metrics.json", metrics)
    resume.path.unlink(missing_ok=True)
    return metrics


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """Serialise curve rows (all with the same keys) as CSV text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
