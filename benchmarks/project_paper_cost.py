"""Project the compute of the full replication (config/paper.yaml) from counted FLOPs and a measured rate.

Counts the FLOPs of one training step and one evaluation forward of the paper's network for every data set
(torch.utils.flop_counter), multiplies by the iterations the paper profile runs (base: all T iterations;
A(base): phase 1 is base's, phase 2 is a forward of the frozen body plus the head's backward; evaluation of
train and test set every epoch), and divides by
  - the rate measured here on a real training step of the same network (CPU), and
  - an assumed sustained GPU rate (--gpu-tflops, default 25 TFLOP/s: fp32/TF32 ResNet-18 at batch 64 on an
    H100-class GPU uses a small fraction of its peak; this is an assumption, not a measurement).
Usage: python benchmarks/project_paper_cost.py [--gpu-tflops 25] [--out benchmarks/results/paper-cost-projection.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

from globalmin.models import build_model
from globalmin.train import make_schedule

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


def main() -> None:
    """Count, measure, project, and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-tflops", type=float, default=25.0)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "paper-cost-projection.json"))
    args = parser.parse_args()
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in yaml.safe_load((REPO / "config" / "paper.yaml").read_text()).items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    train, recipe = cfg["train"], cfg["recipe"]
    runs = len(cfg["experiment"]["seeds"])
    bs = train["batch_size"]
    per_dataset, total = {}, 0.0
    rate = None
    for name in cfg["experiment"]["datasets"]:
        n, n_test, c, s, k = SIZES[name]
        torch.manual_seed(0)
        model = build_model(cfg["model"], c, k, n)
        x, y = torch.rand(bs, c, s, s), torch.randint(0, k, (bs,))
        train_step = step_flops(model, x, y, backward=True)
        forward = step_flops(model, x, y, backward=False)
        head_only = forward + 2 * 2 * bs * model.head.in_features * k  # body forward + head backward
        if rate is None and name == "cifar10":
            rate = measure_rate(model, x, y, train_step)
        flops = 0.0
        for augmented in cfg["experiment"]["augmentation"]:
            epochs = train["epochs"]["augmented" if augmented else "plain"]
            fractions = [recipe["tau_fraction"]] + (recipe["tau_ablation"]["fractions"]
                                                     if name in recipe["tau_ablation"]["datasets"] else [])
            sched = make_schedule(n, bs, epochs, recipe["tau_fraction"])
            evals = epochs * (n + n_test) / bs * forward
            base = sched.total * train_step + evals
            recipes = sum((sched.total - make_schedule(n, bs, epochs, f).tau) * head_only
                          + (1 - f) * evals for f in fractions)
            flops += runs * (base + recipes)
        per_dataset[name] = {"n_train": n, "train_step_gflops": train_step / 1e9, "total_pflops": flops / 1e15,
                             "gpu_hours_projected": flops / (args.gpu_tflops * 1e12) / 3600}
        total += flops
    record = {
        "what": "projected compute of `snakemake --configfile config/paper.yaml` (training and evaluation; "
                "certificates excluded)",
        "method": "FLOPs counted with torch.utils.flop_counter on the paper network per data set, times the "
                  "iterations of the paper profile; CPU rate measured on real ResNet-18 + wide-layer training steps "
                  "(CIFAR-10 shapes, batch 64) here; GPU rate assumed",
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads()},
        "assumed_gpu_sustained_tflops": args.gpu_tflops,
        "measured_cpu_gflops": rate / 1e9,
        "total_pflops": total / 1e15,
        "gpu_hours_projected": total / (args.gpu_tflops * 1e12) / 3600,
        "cpu_hours_projected_this_machine": total / rate / 3600,
        "per_dataset": per_dataset,
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "per_dataset"}, indent=2))


if __name__ == "__main__":
    main()
