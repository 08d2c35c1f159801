"""Project the compute of the full replication (config/paper.yaml) from counted FLOPs and a rate.

Counts FLOPs per job kind of the paper profile, as the pipeline now runs them:
  - base: every training step (torch.utils.flop_counter on the paper network per data set), plus scoring the
    train and test sets every `train.eval_every` epochs (and at tau and T);
  - A(base): phase 2 on cached features (one forward of train and test sets at tau, then the head's steps and
    every epoch's scoring on the features); with augmentation each step runs the frozen body forward too;
  - certificates (float64): at init (base) and at tau (each A(base)): a forward to extract Phi and a
    Householder QR, (4/3) n^3 for m_H = n, plus triangular solves (O(n^2) per step, counted as 2 n^3);
  - the exact optimum is skipped above recipe.optimum.max_n (4,096), so it costs nothing at these sizes;
    the studies (NTK, fully connected, local minima, beyond-NTK on 32 points) run in minutes and are left out.
Rates: training and scoring at --gpu-tflops (assumed 25 TFLOP/s unless --measured names a
benchmarks/train_throughput.py record from a GPU, whose best `paper` variant's TFLOP/s is then used; where its
bf16 or compile setting is not config/paper.yaml's `train` one, the record says the projection assumes it), float64
at --fp64-tflops (assumed). With --measured-certificate (a benchmarks/certificate_time.py record from the same
GPU), a certificate's QR, Lanczos and bound take the time measured at the nearest size, scaled by n^3 (their
cost's order); only its float64 forward pass that extracts Phi stays at the assumed float64 rate. The CPU rate
is measured here on real training steps of the same network.
Usage: python benchmarks/project_paper_cost.py [--gpu-tflops 25] [--fp64-tflops 30] [--measured FILE]
       [--measured-certificate FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

from globalmin.models import build_model
from globalmin.runinfo import read_json
from globalmin.train import make_schedule
from workspace import machine, save_json  # noqa: E402  (benchmarks/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
# n_train, n_test, channels, size, classes of the paper data sets (torchvision's splits; Semeion 1,000 / 593)
SIZES = {"mnist": (60000, 10000, 1, 28, 10), "kmnist": (60000, 10000, 1, 28, 10),
         "cifar10": (50000, 10000, 3, 32, 10), "cifar100": (50000, 10000, 3, 32, 100),
         "svhn": (73257, 26032, 3, 32, 10), "semeion": (1000, 593, 1, 16, 10)}


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, backward: bool) -> int:
    """FLOPs of one forward (and backward) pass on batch x."""
    with FlopCounterMode(display=False) as counter:
        loss = F.cross_entropy(model(x), y)
        if backward:
            loss.backward()
    return counter.get_total_flops()


def measure_rate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, flops: int, repeats: int = 3) -> float:
    """FLOP/s of real training steps of `model` on this machine (median of `repeats` after one warm-up)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return flops / sorted(times)[len(times) // 2]


def certificate_seconds(rows: list[dict], n: int) -> float:
    """Seconds of one QR certificate at size n: the measured row nearest in log n, scaled by (n / its n)^3."""
    row = min(rows, key=lambda r: abs(math.log(r["n"] / n)))
    return row["qr_seconds"] * (n / row["n"]) ** 3


def read_record(path: str, keys: tuple[str, ...], writer: str) -> object:
    """The part of a benchmark record under keys; a missing file or key exits with one line naming the fix."""
    try:
        value = read_json(path)
        for key in keys:
            value = value[key]
    except (OSError, ValueError, KeyError, TypeError) as err:
        sys.exit(f"{path}: no {'.'.join(keys)} ({type(err).__name__}: {err}); write it first with {writer}")
    return value


def fastest_variant(rows: dict[str, dict], path: str, train: dict[str, Any]) -> tuple[float, str]:
    """The TFLOP/s of the fastest project variant among a steps record's rows (read from `path`) and where it came
    from, saying what it assumes where its bf16 or compile setting is not `train`'s (config/paper.yaml's)."""
    # the plain loop is not the project's training; a variant that failed (a compile mode) has an "error", no rate
    project = {k: v for k, v in rows.items() if k != "plain" and "error" not in v}
    if not project:  # a steps run stopped (at a time limit) before it timed the project at the paper's shape
        sys.exit(f"{path}: steps.paper has no project variant; run `gpu.sh steps` to its end")
    name, best = max(project.items(), key=lambda kv: kv[1]["tflops_per_s"])
    source = f"measured: {name} in {path}"
    # the variant's settings, as train_throughput.variants names them; where the profile runs others, say so
    used = {"bf16": "bf16" in name, "compile": name.partition("_compile_")[2] or "none"}
    configured = {"bf16": bool(train.get("bf16", False)), "compile": train.get("compile", "none")}
    shown = {True: "true", False: "false"}  # as YAML writes them
    differ = [f"train.{key}: {shown.get(used[key], used[key])} (it says {shown.get(configured[key], configured[key])})"
              for key in used if used[key] != configured[key]]
    if differ:
        source += f"; assumes {' and '.join(differ)} in config/paper.yaml: set it there"
    return best["tflops_per_s"], source


def main() -> None:
    """Count, measure, project, and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-tflops", type=float, default=25.0, help="assumed training rate (bf16/TF32)")
    parser.add_argument("--fp64-tflops", type=float, default=30.0, help="assumed float64 rate of the certificates")
    parser.add_argument("--measured", help="a GPU record of benchmarks/train_throughput.py: use its rate")
    parser.add_argument("--measured-certificate",
                        help="a GPU record of benchmarks/certificate_time.py: use its QR certificate times")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "paper-cost-projection.json"))
    args = parser.parse_args()
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in yaml.safe_load((REPO / "config" / "paper.yaml").read_text()).items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    rate_source = f"assumed {args.gpu_tflops} TFLOP/s"
    if args.measured:
        steps = read_record(args.measured, ("steps", "paper"),
                            "`benchmarks/train_throughput.py --parts steps --shapes paper` (`gpu.sh steps`)")
        args.gpu_tflops, rate_source = fastest_variant(steps, args.measured, cfg["train"])
    certificate_rows = read_record(args.measured_certificate, ("rows",),
                                   "`benchmarks/certificate_time.py` (`gpu.sh certificate`)") \
        if args.measured_certificate else None
    train, recipe = cfg["train"], cfg["recipe"]
    runs, bs, every = len(cfg["experiment"]["seeds"]), train["batch_size"], train.get("eval_every", 1)
    per_dataset, kinds, rate = {}, {"base": 0.0, "recipe": 0.0, "certificates_fp64": 0.0}, None
    certificate_hours = 0.0
    jobs = {"base": 0, "recipe": 0}
    for name in cfg["experiment"]["datasets"]:
        n, n_test, c, s, k = SIZES[name]
        torch.manual_seed(0)
        model = build_model(cfg["model"], c, k, n)
        x, y = torch.rand(bs, c, s, s), torch.randint(0, k, (bs,))
        train_step = step_flops(model, x, y, backward=True)
        forward = step_flops(model, x, y, backward=False)
        head = 2 * bs * model.head.in_features * k  # the head's forward on a batch of features
        if rate is None and name == "cifar10":
            rate = measure_rate(model, x, y, train_step)
        fractions = [recipe["tau_fraction"]] + (recipe["tau_ablation"]["fractions"]
                                                 if name in recipe["tau_ablation"]["datasets"] else [])
        extract = forward * (n / bs)  # the float64 forward pass that extracts Phi
        certificate = extract + (4 / 3) * n ** 3 + 2 * n ** 3
        cert_s = certificate / (args.fp64_tflops * 1e12) if certificate_rows is None else \
            extract / (args.fp64_tflops * 1e12) + certificate_seconds(certificate_rows, n)
        flops = {"base": 0.0, "recipe": 0.0, "certificates_fp64": 0.0}
        job_minutes, dataset_certificate_hours = {}, 0.0
        for augmented in cfg["experiment"]["augmentation"]:
            epochs = train["epochs"]["augmented" if augmented else "plain"]
            sched = make_schedule(n, bs, epochs, recipe["tau_fraction"])
            one_eval = (n + n_test) / bs * forward
            base = sched.total * train_step + (epochs / every + 2) * one_eval
            recipe_job = 0.0
            for f in fractions:
                steps = sched.total - make_schedule(n, bs, epochs, f).tau
                body = forward if augmented else 0.0  # augmented batches go through the frozen body each step
                evals = (1 - f) * epochs + 1
                recipe_job += one_eval + steps * (body + 3 * head) + evals * (n + n_test) / bs * head
            flops["base"] += runs * base
            flops["recipe"] += runs * recipe_job
            flops["certificates_fp64"] += runs * (1 + len(fractions)) * certificate
            dataset_certificate_hours += runs * (1 + len(fractions)) * cert_s / 3600
            key = "aug" if augmented else "noaug"
            job_minutes[f"base_{key}"] = (base / (args.gpu_tflops * 1e12) + cert_s) / 60
            job_minutes[f"recipe_{key}"] = (recipe_job / (args.gpu_tflops * 1e12) + len(fractions) * cert_s) / 60
            jobs["base"] += runs
            jobs["recipe"] += runs
        for kind in kinds:
            kinds[kind] += flops[kind]
        certificate_hours += dataset_certificate_hours
        hours = (flops["base"] + flops["recipe"]) / (args.gpu_tflops * 1e12) / 3600 + dataset_certificate_hours
        per_dataset[name] = {"n_train": n, "train_step_gflops": train_step / 1e9,
                             **{f"{kind}_pflops": v / 1e15 for kind, v in flops.items()}, "gpu_hours": hours,
                             "projected_job_minutes": job_minutes}
    training = kinds["base"] + kinds["recipe"]
    record = {
        "what": "projected compute of `snakemake --configfile config/paper.yaml`: training, scoring, phase 2 on "
                "cached features and float64 certificates (the studies' minutes left out)",
        "method": "FLOPs counted with torch.utils.flop_counter on the paper network per data set, times what each "
                  "job kind runs; CPU rate measured here on real ResNet-18 + wide-layer training steps",
        "machine": machine(torch_threads=torch.get_num_threads()),
        "gpu_training_tflops": args.gpu_tflops, "gpu_rate_source": rate_source,
        "assumed_gpu_fp64_tflops": args.fp64_tflops,
        "certificate_source": f"measured QR certificates in {args.measured_certificate}, scaled by n^3 from the "
                              "nearest size; the float64 forward that extracts Phi at the assumed float64 rate"
                              if certificate_rows else "assumed float64 rate",
        "measured_cpu_gflops": rate / 1e9,
        "training_jobs": jobs,
        "pflops_by_kind": {kind: v / 1e15 for kind, v in kinds.items()},
        "certificate_gpu_hours": certificate_hours,
        "gpu_hours_projected": training / (args.gpu_tflops * 1e12) / 3600 + certificate_hours,
        "cpu_hours_projected_this_machine": (training + kinds["certificates_fp64"]) / rate / 3600,
        "per_dataset": per_dataset,
        "date": time.strftime("%Y-%m-%d"),
    }
    save_json(record, args.out)
    print(json.dumps({k: v for k, v in record.items() if k != "per_dataset"}, indent=2))


if __name__ == "__main__":
    main()
