"""Training speed: the project's base and A(base) against a plain PyTorch loop, side by side in one run.

The plain loop is what one would write first: a DataLoader over a TensorDataset (shuffle, CPU tensors copied
to the device per batch), float32, evaluation of the full train and test sets every epoch with `.item()` per
batch, and A(base) as its own run (phase 1 again from the initialisation, then phase 2 through the whole
network with the body frozen). Same network, data shape, batch size, steps and seeds as the project.

Parts (--parts):
  steps     images/s of training steps, project vs plain, for the shapes in --shapes: `digits` (the default
            config's network on 1x8x8) and `paper` (ResNet-18 + wide layer m_H = 50,000 on 3x32x32, CIFAR-10's
            shape, synthetic data). The project runs with everything off (float32 with the plain loop's TF32
            settings, which are torch's, and NCHW: the loop alone) and with the default config (channels_last;
            on CUDA also TF32 and cuDNN autotuning); on CUDA also with config/paper.yaml's bf16 and each
            torch.compile mode in --compile-modes, with MFU against the device's bf16 matmul rate measured here.
  pair      (digits, no augmentation, default config, one thread) a whole base + A(base) pair. Each variant runs
            in its own process, which reports the seconds it spent training (steps and per-epoch scoring; for
            the project Loop.run and phase 2's feature caching, not its certificates or exact optimum):
            `project` (base.run then recipe.run), `plain` (two independent runs, as two plain scripts would
            do) and `plain_branched` (A(base) continues from a copy of base at tau: what is left of the gain
            once phase 1 is shared). Also the process wall times, and the project as its two pipeline jobs
            (`globalmin train-base`, `train-recipe`: start-up, certificates and optimum included).
  concurrent  k processes training `paper` (--concurrent-shape) at once on one device, k in --concurrent: total
            images/s, and the k to use as the `gpu_slots` resource (profiles/default).
Usage: python benchmarks/train_throughput.py [--device cpu|cuda] [--parts steps pair concurrent] [--out FILE]
Every GPU measurement in one command: bash benchmarks/gpu.sh (its parts steps and concurrent run this script)
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from globalmin import api, recipe
from globalmin import data as datamod
from globalmin.models import init_model
from globalmin.runinfo import device_name, limit_threads, read_json
from globalmin.train import Batches, base_step, make_optimizer, make_schedule, speed_for
from workspace import machine, save_json  # noqa: E402  (benchmarks/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
PAPER_MODEL = {"widths": [64, 128, 256, 512], "blocks": [2, 2, 2, 2], "wide_width": 50000,
               "require_expressivity": False, "wide_activation": "tanh"}
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that capture CUDA graphs
BATCH = 64  # both configs' `train.batch_size` (from the authors' related code), for every shape and both loops
# torch's float32 settings as this process starts, before speed_for sets them process-wide for the project's variants
TORCH_FP32_SETTINGS = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                       torch.backends.cudnn.benchmark)
SHAPES = {"digits": (1, 8, CONFIG["model"], 1297), "paper": (3, 32, PAPER_MODEL, 4096)}  # channels, size, model, n


def synthetic(shape: str, device: torch.device) -> datamod.Prepared:
    """Random images of a shape's size in [0, 1] and labels: the data the step timings train on."""
    channels, size, _, n = SHAPES[shape]
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, channels, size, size, generator=gen), torch.randint(0, 10, (n,), generator=gen)
    return datamod.Prepared(shape, x, y, x[:512], y[:512], 10, {}).to(device)


def sync(device: torch.device) -> None:
    """Wait for the device (timings must include the work queued on a GPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def project_steps(shape: str, device: torch.device, train_cfg: dict[str, Any]) -> tuple[Callable[[int], None], int]:
    """The project's training step (train.Batches + train.base_step with the config's device settings)."""
    if train_cfg.get("compile", "none") != "none":
        import torch._dynamo  # only here: the project's training jobs never import it (docs/performance.md)

        torch._dynamo.reset()  # compile afresh: another shape's batch sizes must not make this one dynamic
    data = synthetic(shape, device)
    model = init_model(SHAPES[shape][2], data.x_train.shape[1], 10, data.n_train, 0, device)
    speed = speed_for(train_cfg, device)
    schedule = make_schedule(data.n_train, BATCH, 1000, 0.9)
    batches = Batches(0, data, BATCH, schedule, None, speed.memory_format)
    step = base_step(speed.prepare(model), make_optimizer(model.parameters(), train_cfg), batches, speed)
    return lambda it: step(it, 0.01), model_flops(model, data)


def restore_torch_fp32_settings() -> None:
    """Back to torch's float32 settings as this process started (speed_for changes them process-wide on CUDA)."""
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.benchmark) = TORCH_FP32_SETTINGS


def project_loop_steps(shape: str, device: torch.device,
                       train_cfg: dict[str, Any]) -> tuple[Callable[[int], None], int]:
    """The project's step with the plain loop's float32 settings (torch's: on CUDA, cuDNN's convolutions in TF32 and
    matmuls in full float32), so that against the plain loop only the loop differs; speed_for's one `tf32` key
    cannot say that."""
    made = project_steps(shape, device, train_cfg)
    restore_torch_fp32_settings()
    return made


def plain_steps(shape: str, device: torch.device, train_cfg: dict[str, Any]) -> tuple[Callable[[int], None], int]:
    """A plain loop's step: DataLoader batch from CPU tensors, copied to the device, float32 with torch's defaults."""
    restore_torch_fp32_settings()
    data = synthetic(shape, torch.device("cpu"))
    model = init_model(SHAPES[shape][2], data.x_train.shape[1], 10, data.n_train, 0, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=BATCH, shuffle=True)
    batches = iter(())

    def step(it: int) -> None:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        x, y = batch[0].to(device), batch[1].to(device)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step, model_flops(model, data)


def model_flops(model: torch.nn.Module, data: datamod.Prepared) -> int:
    """Counted FLOPs of one training step (forward and backward) at batch BATCH, on the model's device."""
    device = next(model.parameters()).device
    x, y = data.x_train[:BATCH].to(device, copy=True), data.y_train[:BATCH].to(device, copy=True)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_steps(make: Callable, shape: str, device: torch.device, train_cfg: dict[str, Any], seconds: float,
               warmup: int, start_at: float | None = None) -> dict[str, Any]:
    """Images/s of a step over about `seconds` after `warmup` steps (compilation happens there).

    Both loops run epochs of the shape's n in batches of BATCH, the last one short where BATCH does not divide n: the
    warm-up then lasts at least an epoch, so that the short batch's shape is compiled (or autotuned) before the
    timing starts, and each step counts the images its batch has. A variant compiled to CUDA graphs also records
    how many of its compiled graphs inductor left without them (it then runs them plainly, and says so only in a
    log; on the CPU it skips every one); a concurrent one (`start_at`) how late its warm-up ended, when it overran
    the common start."""
    graphs = train_cfg.get("compile", "none") in CUDA_GRAPH_MODES
    step, flops = make(shape, device, train_cfg)
    skips_before = cudagraph_skips() if graphs else 0  # compiling happens in the warm-up steps
    n = SHAPES[shape][3]
    per_epoch = -(-n // BATCH)
    warmup = max(warmup, per_epoch) if n % BATCH else warmup
    started = time.perf_counter()
    for it in range(warmup):
        step(it)
    sync(device)
    warmup_seconds = time.perf_counter() - started  # includes torch.compile's compilation
    late = {} if start_at is None else {"started_late_s": max(0.0, time.time() - start_at)}
    while start_at is not None and time.time() < start_at:  # concurrent runs start timing together
        time.sleep(0.001)
    done, images, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for it in range(warmup + done, warmup + done + 10):
            step(it)
            images += n - BATCH * (per_epoch - 1) if it % per_epoch == per_epoch - 1 else BATCH
        done += 10
        sync(device)
    elapsed = time.perf_counter() - start
    skips = {"cudagraph_skips": cudagraph_skips() - skips_before} if graphs else {}
    return {"images_per_s": images / elapsed, "steps": done, "seconds": elapsed, "warmup_seconds": warmup_seconds,
            "tflops_per_s": flops / BATCH * images / elapsed / 1e12, "train_step_gflops": flops / 1e9, **skips,
            **late}


def cudagraph_skips() -> int:
    """How many compiled graphs inductor has so far left without CUDA graphs (its own counter)."""
    from torch._dynamo.utils import counters  # only when compiling (the training jobs never import dynamo)

    return counters["inductor"]["cudagraph_skips"]


def bf16_matmul_rate(device: torch.device, seconds: float = 2.0) -> float:
    """The device's measured dense bf16 matmul FLOP/s (8192^3), the denominator of MFU, sustained over about
    `seconds` (a burst of a few products runs before the clocks settle under the power limit, and reads high)."""
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            a @ a
        reps += 50
        sync(device)
    return 2 * 8192 ** 3 * reps / (time.perf_counter() - start)


def variants(device: torch.device, compile_modes: list[str]) -> dict[str, tuple[Callable, dict[str, Any]]]:
    """name -> (step maker, train section): the plain loop and the project's settings to compare."""
    fp32 = {**CONFIG["train"], "bf16": False, "channels_last": False}  # TF32 and autotuning: project_loop_steps
    out = {"plain": (plain_steps, fp32), "project_nchw_fp32": (project_loop_steps, fp32),
           "project_default": (project_steps, CONFIG["train"])}  # config.yaml: channels_last (+ TF32 on CUDA)
    if device.type == "cuda":
        fast = {**CONFIG["train"], "bf16": True}  # config/paper.yaml's GPU settings
        out["project_bf16"] = (project_steps, fast)
        for mode in compile_modes:
            out[f"project_bf16_compile_{mode}"] = (project_steps, {**fast, "compile": mode})
    else:  # on the CPU only when asked (--compile-modes): compiling takes longer than a default run trains
        for mode in compile_modes:
            out[f"project_compile_{mode}"] = (project_steps, {**CONFIG["train"], "compile": mode})
    return out


def run_steps(args: argparse.Namespace, device: torch.device, save: Callable[[dict[str, Any]], None]) -> None:
    """The steps part: every variant on every shape, with ratios to the plain loop (and MFU on CUDA); `save` gets
    the results so far after each variant."""
    peak = bf16_matmul_rate(device) if device.type == "cuda" else None
    result: dict[str, Any] = {"bf16_matmul_tflops_measured": peak and peak / 1e12}
    for shape in args.shapes:
        rows = result[shape] = {}
        for name, (make, train_cfg) in variants(device, args.compile_modes).items():
            try:
                row = rows[name] = time_steps(make, shape, device, train_cfg, args.seconds, args.warmup)
            except Exception as err:  # one variant (a compile mode) failing must not cost the others' time
                if name == "plain":  # every ratio needs it
                    raise
                rows[name] = {"error": f"{type(err).__name__}: {err}"}
                print(shape, name, "FAILED:", rows[name]["error"], file=sys.stderr, flush=True)
            else:
                row["ratio_to_plain"] = row["images_per_s"] / rows["plain"]["images_per_s"]
                if peak:
                    row["mfu"] = row["tflops_per_s"] * 1e12 / peak
                print(shape, name, {k: round(v, 3) for k, v in row.items()}, flush=True)
            save(result)


def run_concurrent(args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> None:
    """k processes training `paper` at once with the project's best settings: total images/s per k; `save` gets
    the results so far after each k."""
    out: dict[str, Any] = {}
    summary = {"by_k": out, "compile": args.concurrent_compile, "shape": args.concurrent_shape}
    for k in args.concurrent:
        start_at = time.time() + args.concurrent_delay * (1 + k / 3)  # after every process has warmed up
        cmd = [sys.executable, __file__, "--device", args.device, "--one-step-run", args.concurrent_shape,
               "--seconds", str(args.seconds), "--warmup", str(args.warmup), "--start-at", str(start_at),
               "--compile", args.concurrent_compile]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        runs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        row = out[str(k)] = {"total_images_per_s": sum(r["images_per_s"] for r in runs),
                             "per_process": [r["images_per_s"] for r in runs],
                             "started_late_s": max(r["started_late_s"] for r in runs)}
        if row["started_late_s"] > 0:  # the processes' timed windows did not fully overlap
            print(f"concurrent {k}: a process warmed up {row['started_late_s']:.1f} s past the common start;"
                  " raise --concurrent-delay", file=sys.stderr, flush=True)
        print("concurrent", k, row, flush=True)
        summary["best_gpu_slots"] = int(max(out, key=lambda j: out[j]["total_images_per_s"]))  # of the k so far
        save(summary)


def plain_run(data: datamod.Prepared, model_cfg: dict[str, Any], train_cfg: dict[str, Any], seed: int,
              start: int, stop: int, phase2_from: int | None = None,
              model: torch.nn.Module | None = None) -> torch.nn.Module:
    """A plain training run over iterations [start, stop), evaluating every epoch; from `phase2_from` on, A(base)'s
    phase 2 (batch norm fixed, the wide layer perturbed, only the head trained, the whole network run forward)."""
    model = model or init_model(model_cfg, data.x_train.shape[1], data.classes, data.n_train, seed)
    sgd = {k: v for k, v in train_cfg["optimizer"].items() if k != "name"}  # the config's SGD settings
    optimizer = torch.optim.SGD(model.parameters(), lr=train_cfg["lr"], **sgd)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=train_cfg["batch_size"],
                        shuffle=True, generator=torch.Generator().manual_seed(seed))
    ipe, milestone = len(loader), train_cfg["milestones"]["plain"][0]
    it = start
    while it < stop:
        for x, y in loader:
            if it == phase2_from:
                model.eval()
                api.perturb(model, ["wide.weight", "wide.bias"], 1e-3, seed)
                for name, p in model.named_parameters():
                    p.requires_grad_(name.startswith("head"))
                optimizer = torch.optim.SGD(model.head.parameters(), lr=train_cfg["lr"], **sgd)
            for group in optimizer.param_groups:
                group["lr"] = train_cfg["lr"] * (0.1 if it // ipe >= milestone else 1.0)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            it += 1
            if it % ipe == 0:
                plain_evaluate(model, data)
            if it == stop:
                break
    return model


def plain_evaluate(model: torch.nn.Module, data: datamod.Prepared) -> tuple[float, float, float]:
    """Train objective and train/test error over DataLoaders, one `.item()` per batch (a plain loop's way)."""
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for x_all, y_all in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
            loss = wrong = 0.0
            for x, y in DataLoader(TensorDataset(x_all, y_all), batch_size=2048):
                logits = model(x)
                loss += F.cross_entropy(logits, y, reduction="sum").item()
                wrong += (logits.argmax(1) != y).sum().item()
            out += [loss / len(y_all), 100 * wrong / len(y_all)]
    model.train(was_training)
    return out[0], out[1], out[3]


def pair_job(name: str, data_path: str, out: str) -> dict[str, float]:
    """One pair in this process (one thread); the seconds spent training, per-epoch scoring included: the
    project's Loop.run and phase-2 feature caching (not its certificates or optimum), or the plain loop."""
    limit_threads(1)
    spent = {"training_s": 0.0}

    def timed(fn: Callable) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent["training_s"] += time.perf_counter() - start
        return wrapper

    if name == "project":
        from globalmin import base, train

        train.Loop.run = timed(train.Loop.run)
        recipe.cached = timed(recipe.cached)
        base.run({**pair_settings(), "seed": 0, "augment": False}, {"data": data_path}, {"run_dir": f"{out}/base"})
        recipe.run({**recipe_settings(), "threads": 1}, {"data": data_path, "tau_states": [f"{out}/base/tau_state.pt"]},
                   {"run_dirs": [f"{out}/recipe"]})
        return spent
    global plain_run
    plain_run = timed(plain_run)
    data = datamod.load(data_path)
    train_cfg, model_cfg = CONFIG["train"], CONFIG["model"]
    schedule = make_schedule(data.n_train, train_cfg["batch_size"], train_cfg["epochs"]["plain"],
                             CONFIG["recipe"]["tau_fraction"])
    if name == "plain_branched":  # A(base) continues from a copy of base's state at tau
        at_tau = plain_run(data, model_cfg, train_cfg, 0, 0, schedule.tau)
        final = copy.deepcopy(at_tau)
        plain_run(data, model_cfg, train_cfg, 0, schedule.tau, schedule.total, model=final)  # base on to T
        plain_run(data, model_cfg, train_cfg, 0, schedule.tau, schedule.total, schedule.tau, model=at_tau)
    else:  # two independent runs, as two plain scripts would be
        plain_run(data, model_cfg, train_cfg, 0, 0, schedule.total)
        plain_run(data, model_cfg, train_cfg, 0, 0, schedule.total, schedule.tau)
    return spent


def pair_settings() -> dict[str, Any]:
    """train-base's settings for the default config's standard run."""
    return {"model": CONFIG["model"], "train": CONFIG["train"], "tau_fraction": CONFIG["recipe"]["tau_fraction"],
            "ablation": [], "data_seed": None,
            "condition": {"name": "standard", "labels": "dataset", "label_seed": None, "loss": "cross_entropy"},
            "certificate": {"method": "auto", "scratch": None}}


def recipe_settings() -> dict[str, Any]:
    """train-recipe's settings (the default recipe section), without phase 2's continuation past T (the plain loop
    has none; it is measured work of its own, not the pair's)."""
    section = {k: v for k, v in CONFIG["recipe"].items() if k != "tau_ablation"}
    return {**section, "horizon": {"epochs": 0, "lr": "initial"}}


def run_pair(repeats: int) -> dict[str, Any]:
    """The pair as the project's two pipeline jobs, and each variant in one process (training seconds inside)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = str(tmp / "digits.pt")
        datamod.prepare("digits", data, CONFIG["data"]["digits"])
        jobs = [["globalmin", "train-base", "--data", data, "--config", json.dumps(pair_settings()), "--seed", "0",
                 "--augment", "noaug", "--threads", "1", "--out-dir", str(tmp / "jobs" / "base")],
                ["globalmin", "train-recipe", "--data", data,
                 "--tau-states", str(tmp / "jobs" / "base" / "tau_state.pt"), "--recipe", json.dumps(recipe_settings()),
                 "--threads", "1", "--out-dirs", str(tmp / "jobs" / "recipe")]]
        names = ["project", "plain", "plain_branched"]
        wall: dict[str, list[float]] = {name: [] for name in names + ["project_jobs"]}
        training: dict[str, list[float]] = {name: [] for name in names}
        for r in range(repeats):  # interleaved, so that a change in machine load hits every variant alike
            for name in names:
                start = time.perf_counter()
                done = subprocess.run([sys.executable, __file__, "--pair-job", name, data, str(tmp / f"{name}{r}")],
                                      check=True, capture_output=True, text=True)
                wall[name].append(time.perf_counter() - start)
                training[name].append(json.loads(done.stdout.strip().splitlines()[-1])["training_s"])
            start = time.perf_counter()
            for cmd in jobs:
                subprocess.run(cmd, check=True, capture_output=True)
            wall["project_jobs"].append(time.perf_counter() - start)
        final = read_json(tmp / "jobs" / "recipe" / "metrics.json")["final"]
    best_training = {name: min(t) for name, t in training.items()}
    best_wall = {name: min(t) for name, t in wall.items()}
    return {"training_seconds": training, "process_seconds": wall, "training_seconds_best": best_training,
            "process_seconds_best": best_wall, "project_final": final,
            "training_speedup_vs_plain": best_training["plain"] / best_training["project"],
            "training_speedup_vs_plain_branched": best_training["plain_branched"] / best_training["project"],
            "process_speedup_vs_plain": best_wall["plain"] / best_wall["project"],
            "jobs_speedup_vs_plain": best_wall["plain"] / best_wall["project_jobs"]}


def main() -> None:
    """Run the chosen parts and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parts", nargs="+", default=["steps", "pair"], choices=["steps", "pair", "concurrent"])
    parser.add_argument("--shapes", nargs="+", default=["digits", "paper"], choices=list(SHAPES))
    parser.add_argument("--compile-modes", nargs="*", default=None,
                        help="torch.compile modes to time (default: default and reduce-overhead on CUDA, none on CPU)")
    parser.add_argument("--concurrent", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrent-compile", default="none", help="concurrent: torch.compile mode")
    parser.add_argument("--concurrent-shape", default="paper", choices=list(SHAPES))
    parser.add_argument("--concurrent-delay", type=float, default=60.0,
                        help="concurrent: seconds to warm up (and compile) before timing starts")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per step measurement")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="pair: interleaved repeats (the best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1, as a pipeline job)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--pair-job", nargs=3, help=argparse.SUPPRESS)  # internal: one pair in this process
    parser.add_argument("--one-step-run", help=argparse.SUPPRESS)  # internal: one concurrent process
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--compile", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_modes is None:
        args.compile_modes = ["default", "reduce-overhead"] if args.device.startswith("cuda") else []
    if args.pair_job:
        print(json.dumps(pair_job(*args.pair_job)))
        return
    limit_threads(args.threads)
    device = torch.device(args.device)
    if args.one_step_run:
        cfg = {**CONFIG["train"], "bf16": True, "compile": args.compile}
        print(json.dumps(time_steps(project_steps, args.one_step_run, device, cfg, args.seconds, args.warmup,
                                    args.start_at)))
        return
    record: dict[str, Any] = {
        "what": "training throughput of the project against a plain PyTorch loop (benchmarks/train_throughput.py)",
        "device": device_name(device),
        "machine": machine(torch=torch.__version__, torch_threads=args.threads),
        "date": time.strftime("%Y-%m-%d")}

    def saver(part: str) -> Callable[[dict[str, Any]], None]:
        """Record a part's results so far and write the file (atomically): a run stopped at a time limit keeps what
        it measured."""
        def save(value: dict[str, Any]) -> None:
            record[part] = value
            if args.out:
                save_json(record, args.out)
        return save

    if "steps" in args.parts:
        run_steps(args, device, saver("steps"))
    if "pair" in args.parts:
        saver("pair")(run_pair(args.repeats))
        print("pair", {k: v for k, v in record["pair"].items() if k != "seconds_all"}, flush=True)
    if "concurrent" in args.parts:
        run_concurrent(args, saver("concurrent"))


if __name__ == "__main__":
    main()
