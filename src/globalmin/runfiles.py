"""What a training run reads and writes besides its loop: base's tau-states, the resume file, the final outputs.

Every file is checked against the run that reads it: a tau-state names its run and config hash (A(base) refuses one
another run wrote), a resume file its fingerprint (another run's is ignored, with a warning naming both), and a
missing, truncated or foreign file gets an error naming it and the fix.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any

import torch

from globalmin.runinfo import UserError, environment, fingerprint, save_torch, write_json, write_text
from globalmin.train import Loop

log = logging.getLogger(__name__)

TAU_STATE_FORMAT = "globalmin-tau-state-1"
RESUME_FILE = "last.pt"  # state at an epoch end in the run folder; undeclared, so a failed job leaves it for the rerun
RESUME_SECONDS = 60.0  # write the resume file at most this often (config train.resume_seconds)


class CheckpointError(UserError):
    """A checkpoint or tau-state file is missing, truncated or of the wrong kind."""


class Resume:
    """The resume file of one run, written atomically at an epoch end once `every_seconds` have passed since the
    last one (0: every epoch), read back only by the same run.

    Why not every epoch: on a GPU an epoch can take seconds while the file holds the model and the optimizer's
    momentum (90 MB for ResNet-18); on a CPU, with the default DAG's small network, it costs little
    (benchmarks/results/resume-cost-cpu-2core.json). An interruption costs at most `every_seconds` of training
    (or one epoch) instead."""

    def __init__(self, out_dir: Path, run_id: str, identity: Any, every_seconds: float | None = None):
        self.path, self.run_id, self.key = out_dir / RESUME_FILE, run_id, fingerprint(identity)
        self.extra: dict[str, Any] = {}  # results computed once per run (A(base)'s certificate), kept across resumes
        self.every_seconds = RESUME_SECONDS if every_seconds is None else every_seconds
        self.last = time.monotonic()

    def save(self, state: dict[str, Any], loop: Loop, iteration: int) -> None:
        """Record the state (model, optimizer, ...) after `iteration` iterations, if one is due."""
        if time.monotonic() - self.last < self.every_seconds:
            return
        save_torch(self.path, {"run_id": self.run_id, "fingerprint": self.key, "iteration": iteration,
                               "rows": loop.rows, "extra": self.extra, **state})
        self.last = time.monotonic()

    def load(self, loop: Loop) -> dict[str, Any] | None:
        """A matching resume file's state (its curve rows restored into `loop`), or None to start over."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # a file cut short is never trusted: start over
            log.warning("%s: ignoring unreadable %s (%s); starting over", self.run_id, self.path, err)
            return None
        if state.get("fingerprint") != self.key:
            log.warning("%s: not resuming from %s: it was written by run %s with another config or input "
                        "(fingerprint %.12s, this run's %.12s); starting over", self.run_id, self.path,
                        state.get("run_id"), state.get("fingerprint"), self.key)
            return None
        loop.rows, self.extra = state["rows"], state.get("extra", {})
        log.info("%s: resuming from iteration %d of %d (%s)", self.run_id, state["iteration"], loop.schedule.total,
                 self.path)
        return state


def tau_state_name(tau_fraction: float | None = None) -> str:
    """File name of a tau-state: `tau_state.pt` at the configured tau, `tau_state_<f>.pt` for an ablation tau."""
    return "tau_state.pt" if tau_fraction is None else f"tau_state_{tau_fraction:g}.pt"


def run_id(dataset: str, condition: str, augmented: bool, seed: int, algorithm: str) -> str:
    """The id of a run, also its folder below results/runs: '<data set>/<condition>/<aug|noaug>/seed<k>/<algorithm>'."""
    return f"{dataset}/{condition}/{'aug' if augmented else 'noaug'}/seed{seed}/{algorithm}"


def load_tau_state(path: str | Path, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read base's tau-state, with a clear error for a missing, truncated or foreign file: one of another format, or,
    with `expect` ({'run_id': ..., 'config_hash': ...}), one another run wrote (another seed, condition or config)."""
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
    for key, value in (expect or {}).items():
        if state.get(key) != value:
            raise CheckpointError(f"tau-state {path} belongs to run {state.get('run_id')} (config hash "
                                  f"{str(state.get('config_hash'))[:12]}), not to {expect.get('run_id')} (config hash "
                                  f"{str(expect.get('config_hash'))[:12]}): its {key} differs; {fix}")
    return state


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """Serialise curve rows (all with the same keys) as CSV text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def finish(model: torch.nn.Module, loop: Loop, out_dir: Path, meta: dict[str, Any], device: torch.device,
           resume: Resume) -> dict[str, Any]:
    """Write the final model, the curve CSV and the self-describing metrics JSON; drop the resume file.

    No wall time in these files: the same run gives the same bytes (job times are in Snakemake's benchmark
    files under logs/)."""
    save_torch(out_dir / "model.pt", {"run_id": loop.run_id, "config": meta["config"], "seed": loop.seed,
                                      "condition": meta.get("condition", {}), "data_seed": meta.get("data_seed"),
                                      "model": model.state_dict()})
    write_text(out_dir / "curve.csv", rows_to_csv(loop.rows))
    metrics = {**meta, "final": {k: loop.rows[-1][k] for k in ("train_objective", "train_error", "test_error")},
               "environment": environment(device)}
    write_json(out_dir / "metrics.json", metrics)
    resume.path.unlink(missing_ok=True)
    return metrics
