"""What the docs' record blocks share: the registry of blocks, reading a record, naming where and by which command
it was measured, and number formats (the blocks are in blocks_<page>.py; render_docs.py writes them into the pages)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BLOCKS: dict[str, Callable[[], str]] = {}

# The command that wrote each record, for records written before benchmarks/workspace.py put it in the record
# ({out} is the record's own path).
COMMANDS = {
    "certificate-cpu-2core.json": "python benchmarks/certificate_time.py --out {out}",
    "certificate-large-cpu-2core.json": "python benchmarks/certificate_time.py --sizes 16000 40000 --out {out}",
    "certificate-large-blocked-cpu-2core.json":
        "python benchmarks/certificate_time.py --sizes 40000 --factorisation blocked --out {out}",
    "certificate-memory-cpu-2core.json": "python benchmarks/certificate_memory.py --out {out}",
    "job-sizes-test-cpu-2core.json": "python benchmarks/job_sizes.py --configfile config/test.yaml --out {out}",
    "paper-cost-projection.json": "python benchmarks/project_paper_cost.py --out {out}",
    "pipeline-cpu-2core.json": "python benchmarks/pipeline_time.py --out {out}",
    "pipeline-vs-990fcdd-cpu-1core.json": "python benchmarks/pipeline_time.py --cores 1 --baseline 990fcdd "
                                          "--configfile benchmarks/configs/standard-only.yaml --out {out}",
    "pipeline-vs-990fcdd-cpu-1core-repeat.json": "python benchmarks/pipeline_time.py --cores 1 --baseline 990fcdd "
                                                 "--configfile benchmarks/configs/standard-only.yaml --out {out}",
    "pipeline-vs-990fcdd-cpu-1core-second-host.json":
        "python benchmarks/pipeline_time.py --cores 1 --baseline 990fcdd "
        "--configfile benchmarks/configs/standard-only.yaml --out {out}",
    "pipeline-vs-990fcdd-cpu-2core.json": "python benchmarks/pipeline_time.py --cores all --baseline 990fcdd "
                                          "--configfile benchmarks/configs/standard-only.yaml --out {out}",
    "resume-cost-cpu-2core.json": "python benchmarks/resume_cost.py --repeats 5 --out {out}",
    "slurm-plan-paper.json": "python benchmarks/slurm_plan.py --out {out}",
    "slurm-vs-local-test-cpu-2core.json": "deploy/slurm/start-local.sh python benchmarks/slurm_time.py --out {out}",
    "study-kernels-cpu-2core.json": "python benchmarks/study_kernels.py --out {out}",
    "train-compile-cpu-2core.json": "TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) python benchmarks/train_throughput.py "
                                    "--parts steps --shapes digits --compile-modes default --seconds 15 --warmup 30 "
                                    "--out {out}",
    "train-throughput-cpu-2core.json": "python benchmarks/train_throughput.py --warmup 10 --seconds 15 --repeats 3 "
                                       "--out {out}",
    "train-throughput-pair-cpu-2core-second-host.json":
        "python benchmarks/train_throughput.py --parts pair --repeats 3 --out {out}",
}


def block(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register a function as the writer of the blocks named `name`."""
    def register(fn: Callable[[], str]) -> Callable[[], str]:
        if name in BLOCKS:
            raise ValueError(f"block '{name}' is registered twice")
        BLOCKS[name] = fn
        return fn
    return register


@cache
def record(name: str) -> dict:
    """benchmarks/results/<name> as a dict; a missing or broken record is a one-line error naming it."""
    path = RESULTS / name
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{shown}: no such record; write it with `{command_of(name, {})}` or drop the block "
                         "that reads it") from None
    except json.JSONDecodeError as err:
        raise SystemExit(f"{shown}: not JSON ({err}); rewrite it with `{command_of(name, {})}`") from None


def command_of(name: str, rec: dict) -> str:
    """The command that wrote record `name`: its own `command`, else the one stated in COMMANDS."""
    if rec.get("command"):
        return rec["command"]
    return COMMANDS.get(name, "(not stated: add it to COMMANDS in benchmarks/render_docs.py)").format(
        out=f"benchmarks/results/{name}")


def machine_of(rec: dict) -> str:
    """What a record says of its machine, in a few words."""
    m = rec.get("machine", {})
    words = [m.get("platform", "no machine recorded")]
    if m.get("cpus"):
        words.append(f"{m['cpus']} cores")
    threads = m.get("threads") or m.get("torch_threads")
    if threads:
        words.append(f"{threads} thread{'s' if threads != 1 else ''}")
    if m.get("memory_gib"):
        words.append(f"{m['memory_gib']} GiB")
    if m.get("load_average_before") is not None:
        words.append(f"load average {m['load_average_before']} before")
    return ", ".join(words)


def source(*names: str) -> str:
    """The closing line of a block: each record it read, when and where it was measured, and its command."""
    parts = []
    for name in names:
        rec = record(name)
        parts.append(f"`benchmarks/results/{name}` ({rec.get('date', 'undated')}; {machine_of(rec)}), "
                     f"written by `{command_of(name, rec)}`")
    return "*From " + "; ".join(parts) + ".*"




def use_results(folder: Path) -> None:
    """Read the records from `folder` from now on (a test's copy of benchmarks/results)."""
    global RESULTS
    RESULTS = Path(folder)
    record.cache_clear()


def num(x: float, digits: int = 0) -> str:
    """x with thousands separators and `digits` decimals: 1,297 or 3.94."""
    return f"{x:,.{digits}f}"


def times(x: float, digits: int = 2) -> str:
    """A ratio: 2.95×."""
    return f"{x:.{digits}f}×"


def sci(x: float) -> str:
    """A small number in two significant digits: 3.5e-13."""
    return f"{x:.1e}".replace("e+", "e") if x else "0"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def paper_config() -> dict:
    """config/paper.yaml as written (the keys the paper profile sets over the default)."""
    return yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
