"""Measure the whole default DAG from a clean copy of the workflow: wall time, CPU time, per-rule job-seconds.

Usage: python benchmarks/pipeline_time.py [--cores N] [--configfile PATH] [--out PATH]
Writes benchmarks/results/pipeline-<machine>.json. Not part of the test suite: timings are noisy on shared
machines, so the README quotes this file's figures rather than a test asserting a limit. Job-seconds come from
Snakemake's own benchmark files (logs/benchmarks/), which every training and study rule writes; the CPU time is
that of all the processes Snakemake started. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from workspace import REPO, copy_workflow  # noqa: E402  (benchmarks/ is the script's folder)


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


def main() -> None:
    """Run the DAG in a temporary copy and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_workflow(work)
        cmd = ["snakemake", "--cores", args.cores] + (["--configfile", args.configfile] if args.configfile else [])
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"snakemake failed:\n{done.stderr[-3000:]}")
        jobs = done.stderr.count("Finished jobid")
        per_rule = job_seconds(work)
        devices = sorted({json.loads(p.read_text())["environment"]["device"]
                          for p in work.glob("results/runs/**/metrics.json")})
    record = {
        "what": "snakemake " + " ".join(cmd[1:]) + " on a clean copy (data preparation to report)",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "wall_seconds": round(wall, 1),
        "cpu_seconds_all_processes": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "peak_rss_mib_largest_process": round(after.ru_maxrss / 1024, 1),
        "jobs": jobs,
        "benchmarked_job_seconds": per_rule,
        "device": devices,
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"pipeline-{platform.node() or 'host'}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
