"""How large the environment of the README's install is, and how much of it is CUDA.

Creates a fresh virtual environment, runs the README's install command in it (its <!-- ci:install --> block, the
one CI runs), and measures the environment: its disk usage (`du`), and each installed distribution's files
(importlib.metadata), grouped into the NVIDIA CUDA libraries (nvidia-*), triton, torch itself and the rest. With
--cpu-wheel, also the size of a CPU build of torch installed alone (with --no-deps) into a second fresh
environment: what the CPU route of docs/install.md puts in place of torch and the CUDA libraries.
Writes the record to benchmarks/results/ and its table into docs/install.md (the install-size block).
Usage: python benchmarks/install_size.py [--cpu-wheel torch-...+cpu-....whl] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workspace import machine, save_json, write_doc_block

REPO = Path(__file__).resolve().parents[1]
# run by the environment's own python: bytes of every installed distribution's files
SIZES = """
import importlib.metadata as md, json, os
out = {}
for dist in md.distributions():
    total = 0
    for f in dist.files or []:
        path = dist.locate_file(f)
        if os.path.isfile(path):
            total += os.path.getsize(path)
    out[dist.metadata["Name"]] = [dist.version, total]
print(json.dumps(out))
"""


def readme_install() -> list[str]:
    """The command lines of README.md's <!-- ci:install --> block (what .ci/run installs with)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- ci:install -->")[1].split("<!-- /ci:install -->")[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("```")]


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment with an up-to-date pip; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder / "bin" / "python"


def disk_usage(folder: Path) -> int:
    """Bytes the folder takes on disk (du)."""
    return int(subprocess.run(["du", "-s", "-B1", str(folder)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def distributions(python: Path) -> dict[str, list]:
    """name -> [version, bytes of its files] of every distribution installed in the environment."""
    return json.loads(subprocess.run([str(python), "-c", SIZES], capture_output=True, text=True,
                                     check=True).stdout)


def group(name: str) -> str:
    """The group a distribution counts in."""
    low = name.lower()
    return ("nvidia CUDA libraries" if low.startswith("nvidia-") else "triton" if low == "triton"
            else "torch" if low == "torch" else "everything else")


def measure_install(folder: Path) -> dict:
    """The README's install in a fresh environment in `folder`: seconds, disk usage, sizes by group and the
    largest distributions."""
    python = fresh_venv(folder)
    start = time.perf_counter()
    for command in readme_install():
        words = shlex.split(command)
        if words[:3] != ["python", "-m", "pip"]:
            raise SystemExit(f"unexpected install line in README.md: {command}")
        subprocess.run([str(python), *words[1:]], cwd=REPO, check=True)
    seconds = time.perf_counter() - start
    dists = distributions(python)
    groups: dict[str, int] = {}
    for name, (_, size) in dists.items():
        groups[group(name)] = groups.get(group(name), 0) + size
    largest = sorted(dists.items(), key=lambda kv: -kv[1][1])[:12]
    return {"command": readme_install(), "install_seconds": round(seconds, 1), "du_bytes": disk_usage(folder),
            "distributions": len(dists), "bytes_by_group": groups,
            "largest": [{"name": n, "version": v, "bytes": b} for n, (v, b) in largest],
            "torch": dists.get("torch", [None])[0]}


def measure_cpu_wheel(wheel: Path, folder: Path) -> dict:
    """A CPU build of torch installed alone into a fresh environment: its files' bytes."""
    python = fresh_venv(folder)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    version, size = distributions(python)["torch"]
    return {"wheel": wheel.name, "version": version, "bytes": size}


def table(record: dict, name: str) -> str:
    """The record as the Markdown docs/install.md shows."""
    mb, install = 1e6, record["install"]
    groups = install["bytes_by_group"]
    total = sum(groups.values())
    intro = (f"Measured by `benchmarks/install_size.py` (benchmarks/results/{name}): a fresh virtual environment, "
             f"Python {record['python']}, `{' && '.join(install['command'])}`, which installed "
             f"{install['distributions']} distributions with torch {install['torch']} (in "
             f"{install['install_seconds']:.0f} s from a local package mirror, on a shared machine: load average "
             f"{record['machine']['load_average_before']} before). `du` of the environment: "
             f"**{install['du_bytes'] / 1e9:.1f} GB** ({install['du_bytes'] / 2 ** 30:.1f} GiB, what `du -sh` prints).")
    lines = [intro, "", "| part | installed size (MB) | share |", "|---|---|---|"]
    for part in ("nvidia CUDA libraries", "triton", "torch", "everything else"):
        lines.append(f"| {part} | {groups.get(part, 0) / mb:,.0f} | {100 * groups.get(part, 0) / total:.0f}% |")
    if "cpu_torch" in record:
        cpu = record["cpu_torch"]
        cuda = sum(groups.get(k, 0) for k in ("nvidia CUDA libraries", "triton", "torch"))
        lines += ["", (f"A CPU build of torch ({cpu['version']}, the one this machine had; installed alone): "
                       f"{cpu['bytes'] / mb:,.0f} MB, in place of torch, triton and the CUDA libraries "
                       f"({cuda / mb:,.0f} MB).")]
    return "\n".join(lines)


def main() -> None:
    """Measure; print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-wheel", type=Path, default=None)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "install-size-cpu-2core.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        record = {"what": __doc__.splitlines()[0], "method": " ".join(__doc__.split("\n\n")[1].split()),
                  "machine": machine(), "python": sys.version.split()[0],
                  "install": measure_install(Path(tmp) / "venv")}
        if args.cpu_wheel:
            record["cpu_torch"] = measure_cpu_wheel(args.cpu_wheel, Path(tmp) / "cpu")
    print(json.dumps(record, indent=2))
    print(f"wrote {save_json(record, args.out)}")
    if Path(args.out).parent == REPO / "benchmarks" / "results":
        block = table(record, Path(args.out).name)
        print(f"wrote {write_doc_block(REPO / 'docs' / 'install.md', 'install-size', block)}")


if __name__ == "__main__":
    main()
