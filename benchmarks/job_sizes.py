"""Measure every job of a DAG: wall time and peak memory per rule, the numbers behind profiles/slurm's resources.

Runs `snakemake --cores N` on a clean copy of the workflow and samples the process tree every 50 ms. Each job's
process writes its stdout into the job's `log:` file, so the open file on descriptor 1 names the job, and a dry
run of the same DAG maps that log path to its rule. A job's peak memory is the largest sum of resident memory
over its command's process and children seen by the sampler (short peaks between samples can be missed).

Usage: python benchmarks/job_sizes.py [--cores 2] [--configfile config/test.yaml] [--out PATH]
Writes benchmarks/results/job-sizes-<config>-<machine>.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

from workspace import copy_workflow, machine, write_record  # noqa: E402  (benchmarks/ is the script's folder)


def log_to_rule(work: Path, configfile: str | None) -> dict[str, str]:
    """Map each job's log path to its rule name, from a dry run of the DAG."""
    cmd = ["snakemake", "-n", "--cores", "1"] + (["--configfile", configfile] if configfile else [])
    plan = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=True)
    mapping, rule = {}, None
    for line in (plan.stdout + plan.stderr).splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line.strip()):
            rule = m.group(1)
        elif (m := re.match(r"^log: (.+)$", line.strip())) and rule:
            for path in m.group(1).split(", "):
                mapping[str((work / path).resolve())] = rule
    return mapping


class Sampler(threading.Thread):
    """Polls the descendants of one process and records, per job log, the job's times and peak memory."""

    def __init__(self, root: int, logs: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.root, self.logs, self.done = psutil.Process(root), logs, threading.Event()
        self.jobs: dict[str, dict[str, float]] = {}

    def run(self) -> None:
        """Sample until `done` is set."""
        while not self.done.is_set():
            seen: dict[str, int] = {}
            try:
                procs = self.root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    log = os.readlink(f"/proc/{proc.pid}/fd/1")
                    if log not in self.logs:
                        continue
                    tree = [proc] + proc.children(recursive=True)
                    rss = sum(p.memory_info().rss for p in tree)
                    started = proc.create_time()
                except (psutil.Error, OSError):
                    continue
                seen[log] = seen.get(log, 0) + rss
                job = self.jobs.setdefault(log, {"start": started, "end": started, "peak_rss": 0})
                job["start"] = min(job["start"], started)
            now = time.time()
            for log, rss in seen.items():
                self.jobs[log]["end"] = now
                self.jobs[log]["peak_rss"] = max(self.jobs[log]["peak_rss"], rss)
            time.sleep(0.05)


def main() -> None:
    """Run the DAG on a clean copy and write the per-rule record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_workflow(work)
        logs = log_to_rule(work, args.configfile)
        cmd = ["snakemake", "--cores", args.cores] + (["--configfile", args.configfile] if args.configfile else [])
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler = Sampler(proc.pid, logs)
        sampler.start()
        out, _ = proc.communicate()
        wall = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"snakemake failed:\n{out[-3000:]}")
    by_rule: dict[str, list[dict[str, float]]] = {}
    for log, job in sampler.jobs.items():
        by_rule.setdefault(logs[log], []).append(job)
    rules = {}
    for rule, jobs in sorted(by_rule.items()):
        walls = [j["end"] - j["start"] for j in jobs]
        rules[rule] = {"jobs": len(jobs), "wall_seconds_max": round(max(walls), 1),
                       "wall_seconds_median": round(statistics.median(walls), 1),
                       "peak_rss_mib_max": round(max(j["peak_rss"] for j in jobs) / 2**20)}
    unseen = sorted(set(logs.values()) - set(by_rule))
    record = {
        "what": "per-rule wall time and peak resident memory of " + " ".join(cmd) + " on a clean copy",
        "machine": machine(),
        "wall_seconds": round(wall, 1),
        "rules": rules,
        "rules_not_sampled": unseen,  # jobs shorter than one sampling interval, or rules without a command
        "date": time.strftime("%Y-%m-%d"),
    }
    name = Path(args.configfile).stem if args.configfile else "config"
    write_record(record, args.out, f"job-sizes-{name}")


if __name__ == "__main__":
    main()
