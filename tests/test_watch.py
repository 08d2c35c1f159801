"""Watching runs: the status file and TensorBoard curves each run writes under logs/, and `globalmin watch`."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_TRAIN, base_settings

from globalmin import train, watch
from globalmin.cli import main

RUN = "digits/standard/noaug/seed0/base"


def _train_base(digits_file: Path, out: Path, logs: str) -> subprocess.Popen:
    """A base run of a few seconds through the console script, its watch files under `logs` ('off': none)."""
    settings = base_settings({"widths": [16, 32], "blocks": [1, 1], "wide_width": None, "wide_activation": "tanh"},
                             {**TINY_TRAIN, "epochs": {"plain": 40, "augmented": 40}, "eval_every": 4}, 0.9)
    return subprocess.Popen([sys.executable, "-m", "globalmin", "train-base", "--data", str(digits_file), "--config",
                             json.dumps(settings), "--seed", "0", "--augment", "noaug", "--out-dir", str(out)],
                            env={**os.environ, "GLOBALMIN_LOGS": logs}, stderr=subprocess.PIPE, text=True)


def _scalars(folder: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def test_watch_reports_a_running_run_its_curves_and_results_stay_the_same_bytes(digits_file, tmp_path, capsys):
    logs = tmp_path / "logs"
    job = _train_base(digits_file, tmp_path / "watched", str(logs))
    seen = viewer = None
    while job.poll() is None and seen is None:  # the command, as a user types it, until it shows the run
        main(["watch", "--once", "--logs", str(logs)])
        text = capsys.readouterr().out
        seen = next((row for row in text.splitlines() if row.startswith(RUN) and " running " in row
                     and not row.split()[2].startswith("0.00/")), None)  # past its first status, written at start
        if seen is not None:  # the refreshing watch, started while the run trains
            viewer = subprocess.Popen([sys.executable, "-m", "globalmin", "watch", "--logs", str(logs), "--interval",
                                       "0.2"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
        time.sleep(0.2)
    assert job.wait(timeout=300) == 0, job.stderr.read()[-2000:]
    assert seen is not None, "watch never showed the run while it trained"
    run, state, epoch, rate, _, left, *_ = seen.split()
    assert (run, state) == (RUN, "running") and epoch.endswith("/40") and float(rate) > 0 and left.count(":") == 2
    # the refreshing watch ends on its own once the run is done, and says so
    shown, _ = viewer.communicate(timeout=60)
    assert viewer.returncode == 0 and RUN in shown and "ended since watching began: 1 done" in shown
    status = json.loads((logs / "progress" / f"{RUN}.json").read_text())
    assert status["state"] == "trained" and status["iteration"] == status["total"] == status["stop"]

    # the curves TensorBoard shows are the evaluations of curve.csv (float32 in the event file)
    lines = (tmp_path / "watched" / "curve.csv").read_text().splitlines()[1:]
    rows = {int(r.split(",")[2]): r.split(",") for r in lines}
    header = (tmp_path / "watched" / "curve.csv").read_text().splitlines()[0].split(",")
    curve = _scalars(logs / "tensorboard" / RUN, "test_error")
    assert curve and set(curve) <= set(rows) and max(curve) == status["total"]
    for step, value in curve.items():
        assert value == pytest.approx(float(rows[step][header.index("test_error")]), rel=1e-6)
    assert _scalars(logs / "tensorboard" / RUN, "images_per_second")

    # the same run with nothing written for watching: the same bytes
    quiet = _train_base(digits_file, tmp_path / "quiet", "off")
    assert quiet.wait(timeout=300) == 0, quiet.stderr.read()[-2000:]
    for name in ("metrics.json", "curve.csv", "model.pt"):
        assert (tmp_path / "watched" / name).read_bytes() == (tmp_path / "quiet" / name).read_bytes(), name


def _status(folder: Path, run: str, state: str, pid: int, host: str | None = None, age: float = 0.0) -> None:
    record = {"run": run, "state": state, "pid": pid, "host": host or socket.gethostname(), "iteration": 5,
              "total": 10, "stop": 10, "epoch": 0.5, "epochs": 1, "images_per_second": 100.0, "elapsed_s": 3.0,
              "left_s": 3.0, "updated": time.time() - age}
    path = folder / "progress" / f"{run}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_states_follow_the_process_and_the_host(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    _status(tmp_path, "a/running", "running", os.getpid())
    _status(tmp_path, "b/died", "running", int(gone))
    _status(tmp_path, "c/finishing", "trained", os.getpid())
    _status(tmp_path, "d/done", "trained", int(gone))
    _status(tmp_path, "e/elsewhere", "running", 1, host="another-node")
    _status(tmp_path, "f/silent", "running", 1, host="another-node", age=2 * watch.SILENT_SECONDS)
    shown = {s["run"]: s["shown"] for s in watch.read_statuses(tmp_path)}
    assert shown == {"a/running": "running", "b/died": "died", "c/finishing": "finishing", "d/done": "done",
                     "e/elsewhere": "running", "f/silent": "silent"}
    text = watch.table_text(watch.read_statuses(tmp_path), started=0.0)
    assert text.splitlines()[0].split() == ["run", "state", "epoch", "img/s", "elapsed", "left", "test", "err"]
    assert "b/died" not in text and "ended since watching began: 1 died, 1 done, 1 silent" in text


def test_watch_waits_while_snakemake_holds_its_lock(tmp_path):
    logs, lock = tmp_path / "logs", tmp_path / ".snakemake" / "locks" / "0.input.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    viewer = subprocess.Popen([sys.executable, "-m", "globalmin", "watch", "--logs", str(logs), "--interval", "0.1"],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    assert viewer.poll() is None  # no run yet, but Snakemake is running: keep watching
    lock.unlink()
    out, _ = viewer.communicate(timeout=30)
    assert viewer.returncode == 0 and "no run is training" in out


def test_a_run_that_fails_is_marked_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOBALMIN_LOGS", str(tmp_path))
    schedule = train.Schedule(epochs=2, iters_per_epoch=3, tau=3)
    loop = train.Loop("x/failing", "base", 0, schedule, dict(TINY_TRAIN, lr=0.1), [], lambda it, lr: torch.zeros(()),
                      lambda: {"train_objective": math.nan, "train_error": 0.0, "test_error": 0.0})
    with pytest.raises(train.DivergenceError):
        loop.run(0, schedule.total, phase=1)
    status = json.loads((tmp_path / "progress" / "x" / "failing.json").read_text())
    assert status["state"] == "stopped" and status["iteration"] == 2  # the epoch's last step was not recorded


def test_logs_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOBALMIN_LOGS", "off")
    monkeypatch.chdir(tmp_path)
    live = watch.RunStatus("x/quiet", 4, 2, 8, 0, 4)
    for it in range(4):
        live.step(it, torch.ones(()), {"train_objective": 1.0, "train_error": 2.0, "test_error": 3.0})
    live.close()
    assert list(tmp_path.iterdir()) == []
