"""Estimated against measured peak memory of the training jobs (src/globalmin/resources.py).

Each measurement runs a real stage entry point (`globalmin train-base`, then `globalmin train-recipe` on its
tau-states) in a fresh process on scikit-learn's digits, with the default config narrowed to one run and the
wide layer's width m_H set per size, and reads that process's peak resident memory (VmHWM in /proc/self/status,
which counts every page the job touched: what the machine must have). The estimate comes from the same config
through globalmin.resources. Also recorded: the peak of a process that only imports what a training job imports
(resources.RUNTIME_BYTES bounds it). Linux only.
Writes the record to benchmarks/results/ and its table into docs/troubleshooting.md (the job-memory block).
Usage: python benchmarks/job_memory.py [--widths 2000 8000 20000] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from workspace import machine, save_json, write_doc_block

REPO = Path(__file__).resolve().parents[1]
# runs a command through globalmin.cli.main and prints its peak RSS last: VmHWM (KiB), the high-water mark of
# this program's own memory; getrusage's ru_maxrss would also count the forking parent's, which the child
# shares until it execs
HWM = "print('PEAK_KIB', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"
PEAK = f"import sys; from globalmin.cli import main; code = main(sys.argv[1:]); {HWM}; sys.exit(code)"
# a training job's imports and one torch.optim step: its first step imports torch._dynamo (and sympy), 171 MiB more
# than the imports alone on this machine (by hand)
IMPORTS = ("import globalmin.cli, globalmin.base, globalmin.recipe, scipy.sparse.linalg, torch; "
           "p = [torch.zeros(3, requires_grad=True)]; o = torch.optim.SGD(p, lr=0.1); p[0].grad = torch.ones(3); "
           f"o.step(); {HWM}")


def config_for(m: int, augmented: bool, epochs: int = 2) -> dict:
    """The default config, validated, narrowed to one digits run with m_H = m."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["experiment"].update(datasets=["digits"], conditions=["standard"], augmentation=[augmented], seeds=[0])
    config["model"]["wide_width"] = m
    config["train"].update(epochs={"plain": epochs, "augmented": epochs}, milestones={"plain": [1], "augmented": [1]},
                           resume_seconds=0, eval_every=1)
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def peak_of(argv: list[str]) -> int:
    """Peak RSS in bytes of `globalmin <argv>` in a fresh process (which must succeed)."""
    done = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"globalmin {' '.join(argv[:1])} failed:\n{done.stderr[-3000:]}")
    return int(done.stdout.split("PEAK_KIB")[-1].split()[0]) * 1024


def measure(config: dict, data: Path, folder: Path) -> dict:
    """Run train-base, then train-recipe, of the config's one run; their measured and estimated peaks."""
    from globalmin import resources

    run = resources.runs(config)[0]
    ablation = config["recipe"]["tau_ablation"]
    settings = {"model": config["model"], "train": config["train"], "tau_fraction": config["recipe"]["tau_fraction"],
                "ablation": ablation["fractions"], "data_seed": None,
                "condition": {"name": "standard", "labels": "dataset", "label_seed": 0, "loss": "cross_entropy"},
                "certificate": {"method": config["recipe"]["certificate_method"],
                                "scratch": config["recipe"]["certificate_scratch"]}}
    base = folder / "base"
    aug = "aug" if run.augmented else "noaug"
    measured = {"train-base": peak_of(["train-base", "--data", str(data), "--config", json.dumps(settings),
                                       "--seed", "0", "--augment", aug, "--out-dir", str(base)])}
    states = [str(base / "tau_state.pt")] + [str(base / f"tau_state_{f:g}.pt") for f in ablation["fractions"]]
    recipe = {k: v for k, v in config["recipe"].items() if k != "tau_ablation"}
    measured["train-recipe"] = peak_of(["train-recipe", "--data", str(data), "--tau-states", *states, "--recipe",
                                        json.dumps(recipe), "--out-dirs",
                                        *[str(folder / Path(s).stem.replace("tau_state", "recipe")) for s in states]])
    estimated = {job.kind: job.peak(False) for job in (resources.base_job(run), resources.recipe_job(run))}
    return {"n": run.n, "m_H": run.m, "augmented": run.augmented,
            **{kind: {"measured_bytes": measured[kind], "estimated_bytes": estimated[kind][0],
                      "estimated_phase": estimated[kind][1],
                      "estimate_over_measured": round(estimated[kind][0] / measured[kind], 3)} for kind in measured}}


def runtime_peak() -> int:
    """Peak RSS in bytes of a process that imports what a training job imports, and does nothing else."""
    out = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True).stdout
    return int(out.split("PEAK_KIB")[-1].split()[0]) * 1024


def table(record: dict) -> str:
    """The record as the Markdown table docs/troubleshooting.md shows."""
    mib = 2 ** 20
    intro = (f"Measured by `benchmarks/job_memory.py` (benchmarks/results/{Path(record['file']).name}; "
             f"{record['machine']['cpus']} CPUs, torch {record['torch']}): a process that only imports a training "
             f"job's modules peaks at {record['runtime_bytes'] / mib:.0f} MiB (the estimate allows "
             f"{record['runtime_allowance_bytes'] / mib:.0f} MiB).")
    header = ("| n | m_H | augmentation | job | measured peak (MiB) | estimate (MiB) | estimate / measured | "
              "phase of the estimate's peak |")
    lines = [intro, "", header, "|---|---|---|---|---|---|---|---|"]
    for row in record["rows"]:
        for kind in ("train-base", "train-recipe"):
            r = row[kind]
            lines.append(f"| {row['n']} | {row['m_H']} | {'yes' if row['augmented'] else 'no'} | {kind} | "
                         f"{r['measured_bytes'] / mib:.0f} | {r['estimated_bytes'] / mib:.0f} | "
                         f"{r['estimate_over_measured']:.2f} | {r['estimated_phase']} |")
    return "\n".join(lines)


def main() -> None:
    """Measure every (width, augmentation); print and record the table."""
    from globalmin import data as datamod
    from globalmin import resources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[2000, 8000, 20000])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "job-memory-cpu-2core.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits.pt"
        datamod.prepare("digits", data, {"test_size": 500, "split_seed": 0})
        for m in args.widths:
            for augmented in (False, True):
                rows.append(measure(config_for(m, augmented), data, Path(tmp) / f"m{m}-{augmented}"))
                print(json.dumps(rows[-1]), flush=True)
    import torch

    record = {"what": __doc__.splitlines()[0], "method": " ".join(__doc__.split("\n\n")[1].split()),
              "machine": machine(), "torch": torch.__version__, "file": str(Path(args.out).name),
              "runtime_bytes": runtime_peak(), "runtime_allowance_bytes": resources.RUNTIME_BYTES,
              "stated_factor": resources.RSS_FACTOR, "rows": rows}
    print(f"wrote {save_json(copy.deepcopy(record), args.out)}")
    if Path(args.out).parent == REPO / "benchmarks" / "results":
        print(f"wrote {write_doc_block(REPO / 'docs' / 'troubleshooting.md', 'job-memory', table(record))}")


if __name__ == "__main__":
    main()
