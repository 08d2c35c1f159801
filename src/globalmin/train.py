"""The training loop that `base` and A(base) share: schedule, seeded mini-batches, losses, evaluation, progress
(the files a run reads and writes: runfiles.py).

Every random draw of a run comes from its one seed through `derive_seed`: the initialisation, the shuffle of
each epoch, the augmentation of each iteration and the perturbation at tau. None of them depends on
generator state carried between iterations, so a run can be branched (A(base) at tau) at any iteration and
still draw exactly what the uninterrupted run would have drawn. The stages that train are `base.py` and
`recipe.py`; this module holds what they have in common.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from tqdm import tqdm

from globalmin import augment as aug
from globalmin import data as datamod
from globalmin.datasets import Augmentation
from globalmin import optimizers
from globalmin.runinfo import UserError, generator, limit_threads, resolve_device
from globalmin.watch import RunStatus

log = logging.getLogger(__name__)


@contextlib.contextmanager
def timed(run_id: str, what: str) -> Iterator[None]:
    """Log the start and the time of a step without iterations of its own (a certificate, the exact optimum), so
    that a run whose step takes minutes at a large n says what it is doing."""
    log.info("%s %s ...", run_id, what)
    start = time.perf_counter()
    yield
    log.info("%s %s: done in %.1f s", run_id, what, time.perf_counter() - start)

PROGRESS_SECONDS = 60.0  # without a terminal, a progress line at least this often within long epochs


class DivergenceError(UserError):
    """The training objective became NaN or infinite."""


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
    """(epochs, lr milestones) for an augmented or plain run: runs with augmentation train longer."""
    key = "augmented" if augmented else "plain"
    return int(train_cfg["epochs"][key]), list(train_cfg["milestones"][key])


def lr_at(iteration: int, schedule: Schedule, train_cfg: dict[str, Any], milestones: list[int]) -> float:
    """Step schedule: lr * gamma^(number of milestones reached). Stateless, so both phases share it exactly."""
    epoch = iteration // schedule.iters_per_epoch
    return train_cfg["lr"] * train_cfg["lr_gamma"] ** sum(epoch >= m for m in milestones)


class Batches:
    """The mini-batch of iteration `it`: epoch e's order is a permutation drawn from (seed, 'shuffle', e), and an
    augmented run's images are augmented with draws from (seed, 'augment', it).

    Draws are made on the CPU (the same numbers on every device) for a whole epoch at once and moved to the
    device in one copy, and the epoch's images are augmented in one call there, so a step only slices device
    tensors: no host sync and no host-to-device copy per step (the price: one augmented copy of the training set).
    `memory_format` is the layout the model wants its inputs in (channels_last on a GPU).
    """

    def __init__(self, seed: int, data: datamod.Prepared, batch_size: int, schedule: Schedule,
                 spec: Augmentation | None = None, memory_format: torch.memory_format = torch.contiguous_format):
        self.seed, self.data, self.batch_size, self.schedule, self.spec = seed, data, batch_size, schedule, spec
        self.memory_format = memory_format
        self._epoch, self._perm, self._images = -1, torch.empty(0, dtype=torch.long), None

    def _draw_epoch(self, epoch: int) -> None:
        """Permutation and augmentation parameters of every iteration of `epoch`, onto the device at once, and the
        epoch's augmented images: the ops are per sample, so one call over the epoch gives each batch's pixels
        bit for bit (tests/test_augment.py) at a fifth of the per-batch calls' time on the CPU."""
        device = self.data.y_train.device
        perm = torch.randperm(self.data.n_train, generator=generator(self.seed, "shuffle", epoch))
        self._epoch, self._perm, self._images = epoch, perm.to(device), None
        if self.spec is not None:
            first, bs = epoch * self.schedule.iters_per_epoch, self.batch_size
            draws = [aug.draw(self.spec, len(perm[k * bs:(k + 1) * bs]), generator(self.seed, "augment", first + k))
                     for k in range(self.schedule.iters_per_epoch)]
            params = {key: torch.cat([d[key] for d in draws]).to(device) for key in draws[0]}
            self._images = aug.apply(self.data.x_train[self._perm], self.spec, params)

    def indices(self, it: int) -> torch.Tensor:
        """Training-set indices of iteration `it`, on the data's device."""
        epoch, k = divmod(it, self.schedule.iters_per_epoch)
        if epoch != self._epoch:
            self._draw_epoch(epoch)
        return self._perm[k * self.batch_size:(k + 1) * self.batch_size]

    def __call__(self, it: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of iteration `it`, the inputs augmented if the run is."""
        idx = self.indices(it)
        if self._images is None:
            x = self.data.x_train[idx]
        else:
            k = it % self.schedule.iters_per_epoch
            x = self._images[k * self.batch_size:(k + 1) * self.batch_size]
        return x.contiguous(memory_format=self.memory_format), self.data.y_train[idx]


@dataclass(frozen=True)
class Speed:
    """How a run uses its device (config `train`: bf16, channels_last, compile); the defaults are plain float32.

    bf16 acts on CUDA only (`speed_for`); certificates and the optimum stay float64 whatever these say, because
    they build their own float64 features.
    """

    bf16: bool = False  # bf16 autocast for training steps and evaluation
    channels_last: bool = False  # NHWC activations: cuDNN's tensor cores and oneDNN's CPU kernels want them
    compile: str = "none"  # torch.compile mode of the training forward; 'reduce-overhead' adds CUDA graphs

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of the model's inputs and convolution weights."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self, device: torch.device) -> torch.autocast:
        """The autocast context of a forward pass (a no-op without bf16)."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def prepare(self, model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        """Put the model in its layout; the forward the training step calls (compiled if asked)."""
        model.to(memory_format=self.memory_format)
        if self.compile == "none":
            return model
        # static shapes: an epoch has two batch sizes (the last batch is short), and the default would recompile
        # for the second one as a dynamic-shape graph that then serves the full batches too (CUDA graphs want static)
        return torch.compile(model, mode=None if self.compile == "default" else self.compile, dynamic=False)


def speed_for(train_cfg: dict[str, Any], device: torch.device) -> Speed:
    """A run's Speed from its train section; on CUDA, also TF32 matmuls and cuDNN autotuning (train.tf32,
    train.cudnn_benchmark), which change float32 rounding and algorithm choice but never float64 work."""
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(train_cfg["tf32"])
        torch.backends.cudnn.benchmark = bool(train_cfg["cudnn_benchmark"])
    return Speed(bf16=cuda and bool(train_cfg["bf16"]),
                 channels_last=bool(train_cfg["channels_last"]),
                 compile=train_cfg["compile"])


LOSSES = ("cross_entropy", "squared")


def objective(logits: torch.Tensor, labels: torch.Tensor, loss: str = "cross_entropy",
              reduction: str = "mean") -> torch.Tensor:
    """The training loss of a batch: cross-entropy, or the squared loss on one-hot targets, 1/2 ||f(x) - e_y||^2 per
    point (a condition's `loss`; base and A(base) share it)."""
    if loss == "cross_entropy":
        return F.cross_entropy(logits, labels, reduction=reduction)
    if loss != "squared":
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    total = 0.5 * F.mse_loss(logits, F.one_hot(labels, logits.shape[1]).to(logits.dtype), reduction="sum")
    return total if reduction == "sum" else total / len(labels)


@torch.no_grad()
def predict(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The predicted class of every input."""
    return torch.cat([forward(inputs[i:i + batch_size]).argmax(1) for i in range(0, len(inputs), batch_size)])


@torch.no_grad()
def score(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, labels: torch.Tensor,
          batch_size: int, loss: str = "cross_entropy") -> tuple[float, float]:
    """(mean loss, error in %) of `forward` over a data split, summed on the device: one host sync."""
    total = torch.zeros((), dtype=torch.float64, device=labels.device)
    wrong = torch.zeros((), dtype=torch.long, device=labels.device)
    for i in range(0, len(labels), batch_size):
        logits = forward(inputs[i:i + batch_size]).float()
        total += objective(logits, labels[i:i + batch_size], loss, reduction="sum").double()
        wrong += (logits.argmax(1) != labels[i:i + batch_size]).sum()
    totals = torch.stack([total, wrong.double()]).tolist()
    return totals[0] / len(labels), 100.0 * totals[1] / len(labels)


def evaluate_model(model: torch.nn.Module, data: datamod.Prepared, batch_size: int = 2048,
                   speed: Speed = Speed(), loss: str = "cross_entropy") -> dict[str, float]:
    """Full training-set objective (mean loss, un-augmented, eval mode) and train/test error in %."""
    was_training = model.training
    model.eval()
    with speed.autocast(data.y_train.device):
        train_objective, train_error = score(model, data.x_train, data.y_train, batch_size, loss)
        _, test_error = score(model, data.x_test, data.y_test, batch_size, loss)
    model.train(was_training)
    return {"train_objective": train_objective, "train_error": train_error, "test_error": test_error}


class Progress:
    """Progress of one run: a tqdm bar on a terminal; otherwise a log line at every evaluation and at least every
    PROGRESS_SECONDS, with throughput, elapsed time and time left (job logs under Snakemake have no terminal).
    Either way, a status file for `globalmin watch` and TensorBoard curves under logs/ (watch.RunStatus)."""

    def __init__(self, run_id: str, schedule: Schedule, batch_size: int, start: int, stop: int):
        self.run_id, self.schedule, self.batch_size, self.stop = run_id, schedule, batch_size, stop
        self.start_it, self.start_time = start, time.perf_counter()
        self.last_line = self.start_time
        self.bar = tqdm(total=stop - start, desc=run_id, leave=False) if sys.stderr.isatty() else None
        self.live = RunStatus(run_id, schedule.total, schedule.iters_per_epoch, batch_size, start, stop)

    def step(self, it: int, loss: torch.Tensor | None = None, evaluated: dict[str, float] | None = None) -> None:
        """Record that iteration `it` is done; log a line when due (always after an evaluation)."""
        self.live.step(it, loss, evaluated)
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.perf_counter()
        if evaluated is None and now - self.last_line < PROGRESS_SECONDS:
            return
        self.last_line = now
        done = it + 1 - self.start_it
        rate = done / max(now - self.start_time, 1e-9)
        left = (self.stop - it - 1) / rate if rate > 0 else float("nan")
        text = (f"{self.run_id} it {it + 1}/{self.schedule.total} epoch {(it + 1) / self.schedule.iters_per_epoch:.2f}"
                f" {rate * self.batch_size:.0f} img/s elapsed {now - self.start_time:.0f}s left {left:.0f}s")
        if evaluated is not None:
            text += (f" objective {evaluated['train_objective']:.4f} train err {evaluated['train_error']:.2f}%"
                     f" test err {evaluated['test_error']:.2f}%")
        elif loss is not None:  # one host sync, once a minute at most
            text += f" batch loss {float(loss):.4f}"
        log.info(text)

    def close(self) -> None:
        """Close the terminal bar and the run's live record."""
        self.live.close()
        if self.bar is not None:
            self.bar.close()


@dataclass
class Loop:
    """One run's iterations: `step(it, lr)` does iteration `it` (returns its loss tensor), `evaluate()` scores the
    current parameters; a curve row at every evaluation (epoch ends at the `eval_every` pace, and `extra` ones)."""

    run_id: str
    algorithm: str
    seed: int
    schedule: Schedule
    train_cfg: dict[str, Any]
    milestones: list[int]
    step: Callable[[int, float], torch.Tensor]
    evaluate: Callable[[], dict[str, float]]
    eval_every: int = 1  # epochs between evaluations
    rows: list[dict[str, Any]] = field(default_factory=list)

    def lr(self, it: int) -> float:
        """The learning rate of iteration `it`."""
        return lr_at(it, self.schedule, self.train_cfg, self.milestones)

    def log_row(self, iteration: int, phase: int, lr: float) -> dict[str, Any]:
        """Evaluate and append one curve row; stop the run if the objective is not finite."""
        row = {"algorithm": self.algorithm, "seed": self.seed, "iteration": iteration,
               "epoch": iteration / self.schedule.iters_per_epoch, "phase": phase, "lr": lr, **self.evaluate()}
        if not math.isfinite(row["train_objective"]):
            raise DivergenceError(
                f"run {self.run_id}: training objective is {row['train_objective']} at iteration {iteration} "
                f"(epoch {row['epoch']:.2f}); lower train.lr or check the data (inputs must be in [0, 1])")
        self.rows.append(row)
        return row

    def due(self, done: int) -> bool:
        """Whether a curve row is due after `done` iterations: every eval_every epochs, and at the end."""
        ipe = self.schedule.iters_per_epoch
        return done % ipe == 0 and ((done // ipe) % self.eval_every == 0 or done == self.schedule.total)

    def run(self, start: int, stop: int, phase: int, before: Callable[[int], None] | None = None,
            epoch_end: Callable[[int], None] | None = None) -> None:
        """Iterations [start, stop); `before(it)` runs ahead of each step, `epoch_end(done)` after each epoch."""
        progress = Progress(self.run_id, self.schedule, self.train_cfg["batch_size"], start, stop)
        try:
            for it in range(start, stop):
                if before is not None:
                    before(it)
                loss = self.step(it, self.lr(it))
                row = self.log_row(it + 1, phase, self.lr(it)) if self.due(it + 1) else None
                progress.step(it, loss, row)
                if (it + 1) % self.schedule.iters_per_epoch == 0 and epoch_end is not None:
                    epoch_end(it + 1)
        finally:
            progress.close()


def make_optimizer(params: Any, train_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """`base`'s optimizer: the torch.optim class train.optimizer names, with its keyword arguments (lr is set per
    iteration by the schedule)."""
    return optimizers.build(params, optimizers.settings_of(train_cfg), train_cfg["lr"])


def base_step(forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer, batches: Batches,
              speed: Speed, loss: str = "cross_entropy") -> Callable[[int, float], torch.Tensor]:
    """`base`'s iteration on the whole network: batch `it`, learning rate `lr`, one optimizer step; returns the
    loss on the device (no host sync)."""
    device = batches.data.y_train.device

    def step(it: int, lr: float) -> torch.Tensor:
        x, y = batches(it)
        set_lr(optimizer, lr)
        with speed.autocast(device):
            value = objective(forward(x), y, loss)
        return descend(optimizer, value)

    return step


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> torch.Tensor:
    """One optimizer step on the gradient of `loss`; returns the loss on the device (no host sync)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def setup(data_path: str | Path, augmented: bool, train_cfg: dict[str, Any], tau_fraction: float,
          condition: dict[str, Any] | None = None, threads: int | None = None, data_seed: int | None = None
          ) -> tuple[datamod.Prepared, Schedule, list[int], torch.device, Speed]:
    """Load the run's data (its split and training subset drawn by its data seed, with its condition's labels)
    onto its device and derive the schedule base and A(base) share, and how the run uses its device."""
    if threads:
        limit_threads(threads)
    device = resolve_device(train_cfg["device"])
    data = datamod.for_run(datamod.load(data_path), data_seed)
    data = datamod.with_condition(data, condition, data_seed).to(device)
    epochs, milestones = epochs_for(train_cfg, augmented)
    schedule = make_schedule(data.n_train, train_cfg["batch_size"], epochs, tau_fraction)
    return data, schedule, milestones, device, speed_for(train_cfg, device)
