"""Wall time of a DAG through profiles/slurm against the same DAG run locally, each on a clean copy.

Run it under the local cluster:  deploy/slurm/start-local.sh python benchmarks/slurm_time.py
The SLURM run uses the project's profile and the local cluster's site profile (deploy/slurm/profile), as
tests/test_slurm.py does; the local run uses profiles/default with --cores N. Writes
benchmarks/results/slurm-vs-local-<config>-<machine>.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from workspace import REPO, copy_workflow, machine, write_record  # noqa: E402  (benchmarks/ is the script's folder)


def timed(cmd: list[str]) -> tuple[float, str]:
    """Run `cmd` on a clean copy of the workflow: its wall seconds and output."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_workflow(work)
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall, done.stdout + done.stderr


def main() -> None:
    """Time both runs and write the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/test.yaml")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not os.environ.get("GLOBALMIN_SLURM_PARTITION"):
        raise SystemExit("no local SLURM: run this under deploy/slurm/start-local.sh")
    site = REPO / "deploy" / "slurm" / "profile"
    slurm_cmd = ["snakemake", "--profile", "profiles/slurm", "--profile", str(site), "--configfile", args.configfile]
    local_cmd = ["snakemake", "--cores", args.cores, "--configfile", args.configfile]
    slurm_wall, slurm_out = timed(slurm_cmd)
    local_wall, _ = timed(local_cmd)
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %c %m %G"], capture_output=True, text=True).stdout.split()
    record = {
        "what": f"test of profiles/slurm: the DAG of {args.configfile} through SLURM against a local run, clean copies",
        "machine": machine(note="a shared machine; one SLURM node of this machine's size"),
        "slurm": {"command": " ".join(slurm_cmd).replace(str(REPO) + "/", ""), "wall_seconds": round(slurm_wall, 1),
                  "slurm_jobs": len(re.findall(r"has been submitted with SLURM jobid", slurm_out)),
                  "node": dict(zip(("name", "cpus", "memory_mb", "gres"), node))},
        "local": {"command": " ".join(local_cmd), "wall_seconds": round(local_wall, 1)},
        "ratio": round(slurm_wall / local_wall, 2),
        "date": time.strftime("%Y-%m-%d"),
    }
    name = Path(args.configfile).stem
    write_record(record, args.out, f"slurm-vs-local-{name}")


if __name__ == "__main__":
    main()
