"""What the benchmarks share: a clean copy of the workflow for those that run it (tests/conftest.py uses it too),
what a record says of the machine, where and how a benchmark's record is written, and this process's memory as
Linux reports it, and the blocks of docs pages that show what a benchmark measured."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import sys
from pathlib import Path

from globalmin.runinfo import processor_name, write_text

REPO = Path(__file__).resolve().parents[1]
PARTS = ("workflow", "config", "profiles", "src", "docs")  # what a run reads besides the Snakefile
# the 1-minute load average as the benchmark starts (this module is imported with its script's imports), before its
# own work raises it: other work on a shared machine slows what is timed, so every record says how quiet it was
LOAD_AT_START = os.getloadavg()[0]


def machine(**extra: object) -> dict:
    """What a record says of the machine it was timed on (platform, processor, cores, memory, load before the
    run), then `extra` (device, torch, threads)."""
    return {"platform": platform.platform(), "processor": processor_name(), "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1),
            "load_average_before": round(LOAD_AT_START, 2), **extra}


def copy_workflow(dest: Path) -> Path:
    """The Snakefile and the folders a run reads, copied into `dest` (caches left out)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", dest)
    for folder in PARTS:
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def invocation() -> str:
    """The command line that runs this benchmark, its script named from the repository root."""
    script = Path(sys.argv[0]).resolve()
    return shlex.join(["python", str(script.relative_to(REPO) if script.is_relative_to(REPO) else script),
                       *sys.argv[1:]])


def save_json(record: dict, path: str | Path) -> Path:
    """Write a benchmark's JSON record to `path` atomically (a kill mid-write leaves the previous file or none); keys
    in the order the benchmark built them, NaN kept (runinfo.write_json sorts keys and refuses NaN), and the command
    that wrote it last unless the record names its own (docs/performance.md's blocks cite it)."""
    return write_text(path, json.dumps({**record, "command": record.get("command") or invocation()}, indent=2) + "\n")


def write_record(record: dict, out: str | None, name: str) -> Path:
    """Write a benchmark's JSON record (atomically) to `out`, or to benchmarks/results/<name>-<machine>.json, and
    print it."""
    path = save_json(record, Path(out) if out else
                     REPO / "benchmarks" / "results" / f"{name}-{platform.node() or 'host'}.json")
    print(json.dumps(record, indent=2))
    return path


def status_bytes(field: str) -> int:
    """A memory field of this process's /proc/self/status (RssAnon, VmRSS, VmHWM, ...) in bytes (Linux only)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def write_doc_block(page: str | Path, name: str, text: str) -> Path:
    """Replace what lies between `<!-- NAME -->` and `<!-- /NAME -->` in a docs page with `text`: the numbers a
    page shows are written there by the benchmark that measured them, never typed."""
    path = Path(page)
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    page_text = path.read_text(encoding="utf-8")
    if start not in page_text or end not in page_text:
        raise SystemExit(f"{path} has no {start} ... {end} block to write into")
    before, rest = page_text.split(start, 1)
    return write_text(path, f"{before}{start}\n{text.strip()}\n{end}{rest.split(end, 1)[1]}")
