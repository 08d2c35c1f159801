"""Measure the whole default DAG from a clean copy of the workflow: wall time, peak memory, per-job times.

Usage: python benchmarks/pipeline_time.py [--cores N] [--configfile PATH]
Writes benchmarks/results/pipeline-<machine>.json. Not part of the test suite: timings are noisy on shared
machines, so the README quotes this file's figure rather than a test asserting a limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the DAG in a temporary copy and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(REPO / "Snakefile", work)
        for folder in ("workflow", "config", "profiles", "src"):
            shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        cmd = ["snakemake", "--cores", args.cores] + (["--configfile", args.configfile] if args.configfile else [])
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"snakemake failed:\n{done.stderr[-3000:]}")
        runs = [json.loads(p.read_text()) for p in sorted(work.glob("results/runs/**/metrics.json"))]
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    record = {
        "what": "snakemake " + " ".join(cmd[1:]) + " on a clean copy (data preparation to report)",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "wall_seconds": round(wall, 1),
        "peak_rss_mib_largest_job": round(peak_kib / 1024, 1),
        "training_jobs": len(runs),
        "training_seconds_sum": round(sum(r["wall_seconds"] for r in runs), 1),
        "training_seconds_by_algorithm": {a: round(sum(r["wall_seconds"] for r in runs if r["algorithm"] == a), 1)
                                          for a in ("base", "recipe")},
        "device": sorted({r["environment"]["device"] for r in runs}),
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"pipeline-{platform.node() or 'host'}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
