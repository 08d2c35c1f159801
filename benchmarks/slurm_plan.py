"""Summarise what `snakemake --profile profiles/slurm -n` plans: jobs per rule and what each asks SLURM for.

Usage: python benchmarks/slurm_plan.py [--configfile config/paper.yaml] [--out PATH]
Prints a Markdown table (docs/cluster.md) and writes it with the raw per-rule record as JSON to
benchmarks/results/slurm-plan-<config>.json. Needs the executor plugin (.[slurm]), not a cluster.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from workspace import copy_workflow, save_json  # noqa: E402  (benchmarks/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
SHOWN = ("threads", "mem_mb", "runtime", "gres")


def plan(configfile: str) -> str:
    """The dry run's output, in a fresh copy of the workflow: the whole plan, whatever this checkout has built."""
    cmd = ["snakemake", "--profile", "profiles/slurm", "-n", "--configfile", configfile]
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(cmd, cwd=copy_workflow(Path(folder)), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def files(body: str, field: str) -> list[str]:
    """The files a job block lists under `field` (input or output)."""
    line = re.search(rf"^ *{field}: (.+)$", body, re.M)
    return line.group(1).split(", ") if line else []


def depths(jobs: list[tuple[str, str]]) -> dict[str, int]:
    """Each rule's least depth in the planned job DAG (0: needs no other job's output); the dry run prints jobs in
    an order that changes from run to run, so the table is ordered by this, then by name."""
    producer = {out: i for i, (_, body) in enumerate(jobs) for out in files(body, "output")}
    depth: dict[int, int] = {}

    def of(i: int) -> int:
        if i not in depth:
            needed = [producer[f] for f in files(jobs[i][1], "input") if f in producer]
            depth[i] = 1 + max(map(of, needed)) if needed else 0
        return depth[i]

    least: dict[str, int] = {}
    for i, (rule, _) in enumerate(jobs):
        d = of(i)
        least[rule] = min(least.get(rule, d), d)
    return least


def per_rule(text: str) -> dict[str, dict[str, object]]:
    """Jobs per rule and the distinct values of the resources SLURM sees (threads are CPUs), in data-flow order."""
    rules: dict[str, dict[str, object]] = {}
    # a group's jobs are printed indented under the group
    jobs = [(rule, body) for _, rule, body in re.findall(r"^( *)(?:local)?rule (\w+):\n((?:\1    .*\n)+)", text, re.M)]
    order = depths(jobs)
    for rule, body in sorted(jobs, key=lambda job: (order[job[0]], job[0])):
        entry = rules.setdefault(rule, {"jobs": 0, **{k: set() for k in SHOWN}})
        entry["jobs"] += 1
        threads = re.search(r"^ *threads: (\d+)$", body, re.M)
        entry["threads"].add(threads.group(1) if threads else "1")
        resources = re.search(r"^ *resources: (.+)$", body, re.M)
        values = dict(item.split("=", 1) for item in resources.group(1).split(", ")) if resources else {}
        for key in SHOWN[1:]:
            entry[key].add(values.get(key, "-"))
    return {r: {k: (v if k == "jobs" else sorted(v, key=lambda s: (len(s), s))) for k, v in e.items()}
            for r, e in rules.items()}


def markdown(rules: dict[str, dict[str, object]], profile: dict) -> str:
    """One row per rule: jobs, CPUs, memory, time limit, GPU, and how it runs."""
    groups = profile.get("groups", {})
    rows = ["| rule | jobs | CPUs | mem (MB) | time limit (min) | GPU (gres) | runs as |",
            "|---|---|---|---|---|---|---|"]
    for rule, e in rules.items():
        where = ("Snakemake itself (no command)" if rule == "all" else "local rule (submitting host)"
                 if rule == "fetch_raw" else f"group `{groups[rule]}`" if rule in groups else "one SLURM job each")
        rows.append(f"| {rule} | {e['jobs']} | {' / '.join(e['threads'])} | {' / '.join(e['mem_mb'])} | "
                    f"{' / '.join(e['runtime'])} | {' / '.join(e['gres'])} | {where} |")
    return "\n".join(rows)


def main() -> None:
    """Run the dry run, summarise it, write the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/paper.yaml")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    text = plan(args.configfile)
    rules = per_rule(text)
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.v8+.yaml").read_text())
    table = markdown(rules, profile)
    record = {
        "what": f"snakemake --profile profiles/slurm -n --configfile {args.configfile}: jobs per rule and resources",
        "submitting_host_cpus": os.cpu_count(),
        "total_jobs": sum(e["jobs"] for e in rules.values()),
        "rules": rules,
        "markdown": table,
        "date": time.strftime("%Y-%m-%d"),
    }
    name = Path(args.configfile).stem
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"slurm-plan-{name}.json"
    save_json(record, out)
    print(table)
    print(f"\n{record['total_jobs']} jobs; threads capped at this host's {os.cpu_count()} cores (--cores)")


if __name__ == "__main__":
    main()
