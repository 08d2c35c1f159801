"""Measure the whole default DAG from a clean copy of the workflow: wall time, CPU time, per-rule job-seconds.

Usage: python benchmarks/pipeline_time.py [--cores N] [--configfile PATH] [--commit REV] [--baseline REV] [--out PATH]
       [--keep DIR]
--commit times an earlier commit's workflow and package (git archive; its package first on PYTHONPATH and its
own `globalmin` entry point first on PATH, with this environment's libraries). --baseline REV times that
commit's default DAG first, then this one, and writes both with their ratio: a change timed against its
baseline in one run on the same machine, e.g.
  python benchmarks/pipeline_time.py --baseline 990fcdd --configfile benchmarks/configs/standard-only.yaml \
      --out benchmarks/results/pipeline-vs-990fcdd-cpu-2core.json
Job-seconds (the time jobs run, summed) are best taken with --cores 1: one job at a
time, so that no job's time includes waiting for the other core, e.g.
  python benchmarks/pipeline_time.py --cores 1 --baseline 990fcdd \
      --configfile benchmarks/configs/standard-only.yaml --out benchmarks/results/pipeline-vs-990fcdd-cpu-1core.json
Writes benchmarks/results/pipeline-<machine>.json. Not part of the test suite: timings are noisy on shared
machines, so docs/performance.md shows this file's figures rather than a test asserting a limit. Per-rule job-seconds
come from Snakemake's own benchmark files (logs/benchmarks/), which every training and study rule writes, and
for every rule of any commit from the start and end stamps of Snakemake's log (whole seconds); the CPU time is
that of all the processes Snakemake started. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from workspace import REPO, copy_workflow, machine, write_record  # noqa: E402  (benchmarks/ is the script's folder)


def job_seconds(work: Path) -> dict[str, dict[str, float]]:
    """Per rule group (the first folder below logs/benchmarks, or the file name): jobs, wall s and CPU s summed."""
    groups: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0})
    for tsv in sorted((work / "logs" / "benchmarks").rglob("*.tsv")):
        with open(tsv) as fh:
            row = list(csv.DictReader(fh, delimiter="\t"))[-1]
        rel = tsv.relative_to(work / "logs" / "benchmarks")
        name = rel.stem if rel.parent == Path(".") else f"{rel.parts[0]}:{rel.stem}"
        group = groups[name]
        group["jobs"] += 1
        group["wall_s"] += float(row["s"])
        group["cpu_s"] += float(row["cpu_time"])
    return {k: {m: round(v, 1) for m, v in g.items()} for k, g in sorted(groups.items())}


def logged_job_seconds(log: str) -> dict[str, float]:
    """Per rule: seconds from a job's start to its end in Snakemake's own log (one-second stamps), summed. Every
    commit's log has them, benchmark directive or not; with --cores 1 their total is the DAG's job-seconds."""
    stamp, rule, started, rule_of, seconds = None, None, {}, {}, defaultdict(float)
    for line in log.splitlines():
        if match := re.match(r"\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]$", line):
            stamp = datetime.strptime(" ".join(match.group(1).split()), "%a %b %d %H:%M:%S %Y")
        elif match := re.match(r"(?:local)?rule (\w+):$", line):
            rule = match.group(1)
        elif (match := re.match(r"\s+jobid: (\d+)$", line)) and rule:
            started[match.group(1)], rule_of[match.group(1)], rule = stamp, rule, None
        elif match := re.match(r"Finished jobid: (\d+)", line):
            seconds[rule_of[match.group(1)]] += (stamp - started[match.group(1)]).total_seconds()
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def console_script(work: Path) -> Path:
    """A folder holding the `globalmin` command of the commit extracted in `work`: its pyproject's own entry
    point (module:function) run by this interpreter, as pip would install it, not this checkout's."""
    import tomllib

    entry = tomllib.loads((work / "pyproject.toml").read_text())["project"]["scripts"]["globalmin"]
    module, function = entry.split(":")
    folder = work / ".console"
    folder.mkdir()
    script = folder / "globalmin"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
    script.chmod(0o755)
    return folder


def time_dag(cores: str, configfile: str | None = None, commit: str | None = None, keep: str | None = None) -> dict:
    """One clean run of the DAG (of the working tree, or of `commit`): wall, CPU, jobs, per-rule job-seconds; with
    `keep`, the run's folder is copied there: its report for docs/reference-run*.md, its outputs for `dvc commit`."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if commit:
            archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
            env["PYTHONPATH"] = str(work / "src")
            env["PATH"] = f"{console_script(work)}{os.pathsep}{env['PATH']}"
        else:
            copy_workflow(work)
        cmd = ["snakemake", "--cores", cores]
        cmd += ["--configfile", str(Path(configfile).resolve())] if configfile else []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"snakemake failed:\n{done.stderr[-3000:]}")
        if keep:
            shutil.copytree(work, keep, symlinks=True, dirs_exist_ok=True)
        logged = logged_job_seconds(done.stderr)
        devices = sorted({json.loads(p.read_text()).get("environment", {}).get("device", "?")
                          for p in work.glob("results/runs/**/metrics.json")})
        return {
            "what": f"snakemake --cores {cores}" + (f" --configfile {configfile}" if configfile else "")
                    + " on a clean copy (data preparation to report)" + (f" of commit {commit}" if commit else ""),
            "wall_seconds": round(wall, 1),
            "cpu_seconds_all_processes": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "peak_rss_mib_largest_process": round(after.ru_maxrss / 1024, 1),
            "jobs": done.stderr.count("Finished jobid"),
            "benchmarked_job_seconds": job_seconds(work),
            "logged_job_seconds_total": sum(logged.values()),
            "logged_job_seconds": logged,
            "device": devices}


def main() -> None:
    """Run the DAG (and a baseline commit's, if asked) in temporary copies and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--commit", default=None, help="time this commit's workflow instead of the working tree")
    parser.add_argument("--baseline", default=None, help="also time this commit's default DAG first, and the ratio")
    parser.add_argument("--out", default=None)
    parser.add_argument("--keep", default=None, help="copy the timed run's folder here")
    args = parser.parse_args()
    record = {"machine": machine()}
    if args.baseline:
        record["baseline"] = time_dag(args.cores, commit=args.baseline)
    record.update(time_dag(args.cores, args.configfile, args.commit, args.keep))
    if args.baseline:
        keys = ("wall_seconds", "cpu_seconds_all_processes", "logged_job_seconds_total")
        record["ratio_to_baseline"] = {key: round(record[key] / record["baseline"][key], 3) for key in keys}
    record["date"] = time.strftime("%Y-%m-%d")
    write_record(record, args.out, "pipeline")


if __name__ == "__main__":
    main()
