"""What the resume file costs a training job: one base run with `last.pt` at every epoch end against the default.

The run is the default DAG's augmented digits base run (config/config.yaml's model and train sections, seed 0,
the standard condition), as its own process like a pipeline job: `train.resume_seconds: 0` writes the resume file
at every epoch end, the default (60) writes none in a run this short. The two alternate, `--repeats` pairs, so
that a drift of the machine's speed falls on both; wall and CPU seconds of each process, and the ratio of the
medians. Both runs' models are compared too: the resume file must not change a result.
Usage: python benchmarks/resume_cost.py [--repeats 3] [--out FILE]. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from workspace import REPO, machine, write_record  # noqa: E402  (benchmarks/ is the script's folder)


def settings(resume_seconds: float | None = None) -> dict:
    """train-base's settings for the default config's standard run; resume_seconds None keeps the config's."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    train = cfg["train"] if resume_seconds is None else {**cfg["train"], "resume_seconds": resume_seconds}
    return {"model": cfg["model"], "train": train,
            "tau_fraction": cfg["recipe"]["tau_fraction"], "ablation": [], "data_seed": None,
            "condition": {"name": "standard", "labels": "dataset", "label_seed": 0, "loss": "cross_entropy"},
            "certificate": {"method": cfg["recipe"]["certificate_method"], "scratch": None}}


def timed_run(resume_seconds: float | None, out_dir: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one base run in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "globalmin", "train-base", "--data", str(REPO / "data/prepared/digits.pt"),
                    "--config", json.dumps(settings(resume_seconds)), "--seed", "0", "--augment", "aug",
                    "--threads", "1", "--out-dir", str(out_dir)], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def same_weights(a: Path, b: Path) -> bool:
    """Whether two runs' final models hold the same parameters bit for bit."""
    left, right = (torch.load(p / "model.pt", weights_only=True)["model"] for p in (a, b))
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def main() -> None:
    """Alternate the two settings and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    times: dict[str, list[tuple[float, float]]] = {"every_epoch": [], "default": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            for name, seconds in (("every_epoch", 0), ("default", None)):
                times[name].append(timed_run(seconds, Path(tmp) / f"{name}{k}"))
        identical = same_weights(Path(tmp) / "every_epoch0", Path(tmp) / "default0")
    record = {"what": "one augmented digits base run of the default config as its own process: resume file at every "
                      "epoch end (train.resume_seconds 0) against the default",
              "machine": machine(torch=torch.__version__, threads=1),
              "default_resume_seconds": settings()["train"]["resume_seconds"]}
    for name, runs in times.items():
        record[name] = {"wall_s": [round(w, 2) for w, _ in runs], "cpu_s": [round(c, 2) for _, c in runs],
                        "median_wall_s": round(statistics.median(w for w, _ in runs), 2),
                        "median_cpu_s": round(statistics.median(c for _, c in runs), 2)}
    record["saved_wall_s"] = round(record["every_epoch"]["median_wall_s"] - record["default"]["median_wall_s"], 2)
    record["ratio_wall"] = round(record["default"]["median_wall_s"] / record["every_epoch"]["median_wall_s"], 3)
    record["same_final_weights"] = identical
    record["date"] = time.strftime("%Y-%m-%d")
    write_record(record, args.out, "resume-cost")


if __name__ == "__main__":
    main()
