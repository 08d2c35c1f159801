"""Watching training runs while they train: each run's status file and TensorBoard curves, and `globalmin watch`.

Snakemake sends every job's output to its log file, so a run's tqdm bar never reaches a terminal. Instead each
run (train.Progress) keeps a small status file, logs/progress/<run id>.json, rewritten atomically every
STATUS_SECONDS and at every evaluation: iteration, epoch, images/s, time left, its process and host. The command
`globalmin watch`, in another terminal, shows every running run's line and refreshes until the jobs end (no run
running and no Snakemake lock in the working directory). Each run also writes its curves (the objective, train
and test error at every evaluation; batch loss and images/s at the status pace) as TensorBoard event files under
logs/tensorboard/<run id>, to open while it trains: `tensorboard --logdir logs/tensorboard`.

Nothing here touches a run's computation or its random draws, and everything is written under logs/, outside
the results: metrics.json, curve.csv and model.pt are the same bytes whether or not anyone watches (tested).
The folder is $GLOBALMIN_LOGS (default `logs`, relative to the working directory, where Snakemake runs its jobs);
GLOBALMIN_LOGS=off writes nothing. Kept free of heavy imports: train.py imports it, and the command must start
fast; tensorboard is imported by the first run that writes a curve, rich by the terminal display.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from globalmin.runinfo import write_json

log = logging.getLogger(__name__)

STATUS_SECONDS = 2.0  # a run rewrites its status file at most this often (and at every evaluation)
SILENT_SECONDS = 600.0  # a run on another host whose status is older than this is reported as silent
CURVES = ("train_objective", "train_error", "test_error")


def logs_dir() -> Path | None:
    """The folder runs write their status and curves under ($GLOBALMIN_LOGS, default 'logs'); None when off."""
    value = os.environ.get("GLOBALMIN_LOGS", "logs")
    return None if value.lower() in ("", "off", "0", "none") else Path(value)


class RunStatus:
    """The live record of one run, written by train.Progress: its status file and its TensorBoard curves."""

    def __init__(self, run_id: str, total: int, iters_per_epoch: int, batch_size: int, start: int, stop: int):
        self.run_id, self.total, self.ipe, self.batch_size = run_id, total, iters_per_epoch, batch_size
        self.start_it, self.stop, self.done = start, stop, start
        self.start_time = self.last = time.perf_counter()
        self.evaluated: dict[str, float] = {}
        root = logs_dir()
        self.path = root / "progress" / f"{run_id}.json" if root else None
        self.curves_dir = root / "tensorboard" / run_id if root else None
        self.writer: Any = None
        self.write("running")

    def step(self, it: int, loss: Any = None, evaluated: dict[str, float] | None = None) -> None:
        """Iteration `it` is done: rewrite the status when due (always after an evaluation), add its curves."""
        self.done = it + 1
        now = time.perf_counter()
        if self.path is None or (evaluated is None and now - self.last < STATUS_SECONDS):
            return
        self.last = now
        rate = self.images_per_second(now)
        scalars = {"images_per_second": rate}
        if evaluated is not None:
            self.evaluated = {k: float(evaluated[k]) for k in CURVES if k in evaluated}
            scalars.update(self.evaluated)
        elif loss is not None:  # one host sync per STATUS_SECONDS at most
            scalars["batch_loss"] = float(loss)
        self.add_scalars(scalars, it + 1, flush=evaluated is not None)
        self.write("running")

    def images_per_second(self, now: float) -> float:
        """Training images per second since this process started the run (the last batch may be short)."""
        return (self.done - self.start_it) * self.batch_size / max(now - self.start_time, 1e-9)

    def add_scalars(self, scalars: dict[str, float], step: int, flush: bool) -> None:
        """Append scalars to the run's TensorBoard event file (opened at the first, purging steps after the
        start: a resumed run's curves continue where its resume file left off)."""
        if self.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: the status file still works
                self.curves_dir = None
            if self.curves_dir is None:
                self.writer = False
                return
            self.writer = SummaryWriter(str(self.curves_dir), purge_step=self.start_it, flush_secs=10)
        if self.writer:
            for name, value in scalars.items():
                if math.isfinite(value):
                    self.writer.add_scalar(name, value, step)
            if flush:
                self.writer.flush()

    def write(self, state: str) -> None:
        """Rewrite the status file atomically (a reader never sees half of one)."""
        if self.path is None:
            return
        now = time.perf_counter()
        rate = self.images_per_second(now)
        left = (self.stop - self.done) * self.batch_size / rate if rate > 0 else None
        record = {"run": self.run_id, "state": state, "pid": os.getpid(), "host": socket.gethostname(),
                  "iteration": self.done, "total": self.total, "stop": self.stop,
                  "epoch": self.done / self.ipe, "epochs": self.total / self.ipe,
                  "images_per_second": rate, "elapsed_s": now - self.start_time, "left_s": left,
                  "updated": time.time(), **self.evaluated}
        try:
            write_json(self.path, record)
        except OSError as err:  # a full or read-only disk must not stop the training
            log.warning("%s: cannot write %s (%s); not watched", self.run_id, self.path, err)
            self.path = None

    def close(self) -> None:
        """The loop has ended: 'trained' if it reached its stop, else 'stopped' (an error or an interruption)."""
        self.write("trained" if self.done >= self.stop else "stopped")
        if self.writer:
            self.writer.close()


def alive(pid: int) -> bool:
    """Whether a process of this host with that id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_statuses(root: Path) -> list[dict[str, Any]]:
    """Every run's status under root/progress, with 'shown': running, finishing (trained, its job still writing
    results), done, stopped, died (its process is gone while running) or silent (another host, no news)."""
    found = []
    for path in sorted((root / "progress").rglob("*.json")):
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # replaced while read: the next refresh reads it
        here = status.get("host") == socket.gethostname()
        running = alive(int(status.get("pid", -1))) if here else time.time() - status["updated"] < SILENT_SECONDS
        state = status.get("state")
        status["shown"] = {("running", True): "running", ("running", False): "died" if here else "silent",
                           ("trained", True): "finishing", ("trained", False): "done"}.get((state, running), state)
        found.append(status)
    return found


def snakemake_running(workdir: Path) -> bool:
    """Whether a Snakemake run holds its lock in `workdir` (.snakemake/locks, removed when it ends)."""
    return any((workdir / ".snakemake" / "locks").glob("*.lock"))


def clock(seconds: float | None) -> str:
    """Seconds as h:mm:ss ('?' when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def line(status: dict[str, Any]) -> list[str]:
    """One run's columns: run, state, epoch, images/s, elapsed, time left, the last test error."""
    test = status.get("test_error")
    return [status["run"], status["shown"], f"{status['epoch']:.2f}/{status['epochs']:g}",
            f"{status['images_per_second']:.0f}", clock(status["elapsed_s"]), clock(status["left_s"]),
            "" if test is None else f"{test:.2f}%"]


HEADER = ["run", "state", "epoch", "img/s", "elapsed", "left", "test err"]
ACTIVE = ("running", "finishing")


def ended_text(statuses: list[dict[str, Any]], started: float) -> str:
    """How many runs ended (done, stopped, died, ...) since `started`, by state; '' for none."""
    counts: dict[str, int] = {}
    for status in statuses:
        if status["shown"] not in ACTIVE and status["updated"] >= started:
            counts[status["shown"]] = counts.get(status["shown"], 0) + 1
    return "ended since watching began: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else ""


def table_text(statuses: list[dict[str, Any]], started: float) -> str:
    """The plain-text table of the active runs, then the count of the runs that ended since `started`."""
    rows = [line(s) for s in statuses if s["shown"] in ACTIVE]
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    text = [" ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [HEADER, *rows]] if rows else \
        ["no run is training"]
    return "\n".join(filter(None, [*text, ended_text(statuses, started)]))


def rich_table(statuses: list[dict[str, Any]], started: float) -> Any:
    """The same table as a rich Table, for the terminal display."""
    from rich.table import Table

    table = Table(*HEADER, title=f"globalmin runs ({time.strftime('%H:%M:%S')})",
                  caption=ended_text(statuses, started) or None)
    for status in statuses:
        if status["shown"] in ACTIVE:
            table.add_row(*line(status))
    return table


def watch(root: Path, workdir: Path, interval: float, once: bool) -> int:
    """Show the active runs every `interval` seconds until none is active and Snakemake holds no lock in workdir
    (at once with `once`); a terminal gets a live table, anything else a text block at each change."""
    started = time.time()

    def active() -> tuple[list[dict[str, Any]], bool]:
        statuses = read_statuses(root) if (root / "progress").is_dir() else []
        return statuses, any(s["shown"] in ACTIVE for s in statuses) or snakemake_running(workdir)

    statuses, going = active()
    if once or not going or not sys.stdout.isatty():
        last = None
        while True:
            text = table_text(statuses, started)
            if text != last:
                print(text if once or going else f"{text}\n(no run is training under {root / 'progress'} and no "
                      f"Snakemake run holds a lock in {workdir.resolve()})", flush=True)
                last = text
            if once or not going:
                return 0
            time.sleep(interval)
            statuses, going = active()
    from rich.live import Live

    with Live(rich_table(statuses, started), refresh_per_second=4, screen=False) as live:
        while going:
            time.sleep(interval)
            statuses, going = active()
            live.update(rich_table(statuses, started))
    print(table_text(statuses, started))
    return 0


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> int:
    """`globalmin watch`: inputs 'logs' (the folder runs write under), cfg 'interval' and 'once'."""
    root = Path(inputs.get("logs") or logs_dir() or "logs")
    return watch(root, root.resolve().parent, float(cfg.get("interval", 2.0)), bool(cfg.get("once", False)))
