"""Time the hand-written twins of library code in the studies and the training jobs, each against the library form.

Rows (one thread, as the pipeline's jobs run):
- The local-minimum study's Jacobian (`local_minima_net.jacobian`, back-propagation written out with autograd's own
  kernels) against vmap(jacrev) of one point, at the study's largest network (depth 3, width 16, 96 points, 3
  outputs), with whether the two are bit-identical.
- The beyond-NTK trace kernel (`beyond_ntk.trace_ntk`, torch.func's per-point gradients) against jacrev of the
  whole batch, on the default network of digits at the study's subset of 32 points, with their largest relative
  difference.
- The fully-connected theory check's proofs in ball arithmetic (`fc_theory.rank_n_in_ball_arithmetic`, the
  determinant of an n x n minor of Phi) against the determinant of Phi Phi^T it replaced, over every network of
  the default grid that float64 cannot decide, with the precision each needed and whether they decide alike.
- An augmented digits epoch's batches (`train.Batches`, the epoch augmented in one call) against an augmentation
  call per batch, with whether the batches are bit-identical.
Usage: python benchmarks/study_kernels.py [--repeats 20] [--out FILE]
Writes benchmarks/results/study-kernels-<machine>.json. Run it on a quiet machine.

With --twins REV it times instead whole jobs of the default DAG with and without the twins (the rule that a twin
stays only where it saves more than 5 % of the default DAG's wall time), alternated, each a fresh process:
- `globalmin local-minima` and `globalmin ntk` with the default config's sections, as their rules call them:
  REV's source tree (every twin) against this one (the twins removed here), and the local-minimum job with the
  library Jacobian in place of the kept twin (benchmarks/torch_func_jacobian.py);
- the ways out of a `globalmin` process: the interpreter's teardown, os._exit after a garbage collection, and the
  same with the imports' objects frozen out of that collection (gc.freeze), on one command of each kind the
  default DAG runs (torch, figures, light), counted over the DAG's jobs from `snakemake --dry-run`.
Savings are set against the default DAG of a pipeline_time.py record (--pipeline; best one timed on the same
machine): a CPU-second saved in a job is worth that DAG's wall/CPU (it keeps its cores busy), the bar is 5 % of
its wall time. --judge RECORD judges an existing record against --pipeline again without timing anything.
Usage: python benchmarks/study_kernels.py --twins 09b460d [--repeats 3] [--pipeline FILE] [--out FILE]
       python benchmarks/study_kernels.py --judge FILE --pipeline FILE
Writes benchmarks/results/study-twins-<machine>.json; needs data/prepared/digits.pt.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch.func import functional_call, jacrev

from globalmin import beyond_ntk, fc_theory
from globalmin import data as datamod
from globalmin import local_minima_net as lm_net
from globalmin.certificate import certify
from globalmin.models import init_model

from torch_func_jacobian import jacobian as library_jacobian  # noqa: E402  (benchmarks/ is the script's folder)
from workspace import REPO, copy_workflow, machine, write_record  # noqa: E402

DIGITS_MODEL = {"widths": [16, 32], "blocks": [1, 1], "wide_width": None, "require_expressivity": True,
                "wide_activation": "tanh"}
def best_seconds(call: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` timed calls, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def jacobian_row(repeats: int) -> dict:
    """The local-minimum Jacobian against vmap(jacrev) of one point."""
    model = lm_net.build_student(8, 16, 3, 3, "tanh", 0)
    params = lm_net.parameters(model)
    x = torch.randn(96, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = best_seconds(lambda: lm_net.jacobian(model, params, x), repeats)
    theirs = best_seconds(lambda: library_jacobian(model, params, x), repeats)
    return {"what": "local_minima_net.jacobian vs vmap(jacrev) of one point (depth 3, width 16, n 96, 3 outputs)",
            "globalmin_ms": round(ours * 1e3, 3), "library_ms": round(theirs * 1e3, 3),
            "speedup": round(theirs / ours, 2),
            "bit_identical": bool(torch.equal(lm_net.jacobian(model, params, x)[0],
                                              library_jacobian(model, params, x)[0]))}


def trace_kernel_row(repeats: int) -> dict:
    """The beyond-NTK trace kernel against jacrev of the whole batch."""
    model = init_model(DIGITS_MODEL, 1, 10, 1297, 0, torch.device("cpu"))
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    params = {k: v.detach() for k, v in model.named_parameters()}

    def library() -> torch.Tensor:
        kernel = torch.zeros(32, 32, dtype=torch.float64)
        for c in range(10):
            jac = jacrev(lambda p, c=c: functional_call(model, p, (x,))[:, c])(params)
            flat = torch.cat([j.reshape(32, -1) for j in jac.values()], dim=1).double()
            kernel += flat @ flat.T
        return kernel

    ours, theirs = best_seconds(lambda: beyond_ntk.trace_ntk(model, x), repeats), best_seconds(library, repeats)
    expected = library()
    return {"what": "beyond_ntk.trace_ntk vs jacrev of the batch (digits network, m_H 1297, 32 points)",
            "globalmin_s": round(ours, 3), "library_s": round(theirs, 3), "speedup": round(theirs / ours, 2),
            "max_relative_difference": float((beyond_ntk.trace_ntk(model, x) - expected).abs().max()
                                             / expected.abs().max())}


def gram_determinant_proof(x: np.ndarray, net: torch.nn.Sequential, activation: str, max_bits: int) -> dict:
    """The proof fc_theory used before: the ball of det(Phi Phi^T), all m_H units, excludes 0 (commit ad82b4a's
    parent)."""
    from flint import ctx

    bits, saved = 128, ctx.prec
    try:
        while True:
            ctx.prec = bits
            h = fc_theory.arb_features(x, fc_theory.layer_weights(net), activation)
            det = (h * h.transpose()).det()
            if det > 0 or bits >= max_bits:
                return {"proven_rank_n": bool(det > 0), "bits": bits}
            bits *= 2
    finally:
        ctx.prec = saved


def fc_proofs_row() -> dict:
    """Both proofs over every network of the default fc_theory grid that float64 cannot decide (timed once each:
    the old one takes tens of seconds)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["fc_theory"]
    digits = datamod.load(REPO / "data" / "prepared" / "digits.pt").x_train.flatten(1).double().numpy()
    cases = []
    grid = itertools.product(cfg["inputs"], cfg["activations"], cfg["narrow_widths"], cfg["depths"],
                             fc_theory.wide_widths(cfg["n"], cfg["wide_ratios"]).values(), cfg["seeds"])
    for kind, activation, width, depth, m_h, seed in grid:
        if fc_theory.predicted_full_rank(activation, kind, m_h, cfg["n"]) is not True or kind == "near_duplicates":
            continue
        x = fc_theory.make_inputs(kind, cfg["n"], seed, cfg["near_duplicate_scale"], digits)
        net = fc_theory.fc_network(x.shape[1], [width] * depth, m_h, activation, seed)
        with torch.no_grad():
            if not certify(net(torch.from_numpy(x)))["full_rank"]:
                cases.append((x, net, activation))
    row: dict = {"what": "fc_theory proofs of rank n over the default grid's networks float64 cannot decide: "
                         "an n x n minor of Phi vs det(Phi Phi^T)", "networks": len(cases)}
    results = {}
    for name, prove in (("minor", fc_theory.rank_n_in_ball_arithmetic), ("gram", gram_determinant_proof)):
        start = time.perf_counter()
        results[name] = [prove(x, net, activation, cfg["max_bits"]) for x, net, activation in cases]
        row[f"{name}_s"] = round(time.perf_counter() - start, 2)
        row[f"{name}_bits"] = {str(b): sum(r["bits"] == b for r in results[name])
                               for b in sorted({r["bits"] for r in results[name]})}
        row[f"{name}_proven"] = sum(r["proven_rank_n"] for r in results[name])
    row["speedup"] = round(row["gram_s"] / row["minor_s"], 2)
    row["same_decisions"] = all(a["proven_rank_n"] == b["proven_rank_n"]
                                for a, b in zip(results["minor"], results["gram"]))
    return row


def epoch_augmentation_row(repeats: int) -> dict:
    """An augmented digits epoch's batches (train.Batches: one augmentation call per epoch) against the
    per-batch augmentation call it replaced, with whether every batch is bit-identical."""
    from globalmin import augment
    from globalmin.runinfo import generator
    from globalmin.train import Batches, make_schedule

    data = datamod.load(REPO / "data" / "prepared" / "digits.pt")
    spec, schedule = augment.spec_for("digits"), make_schedule(data.n_train, 64, 1, 0.5)

    def per_epoch() -> list[torch.Tensor]:  # a fresh Batches each time: the epoch's draws and images are made anew
        batches = Batches(0, data, 64, schedule, spec)
        return [batches(it)[0] for it in range(schedule.iters_per_epoch)]

    def per_batch() -> list[torch.Tensor]:  # the replaced loop: each batch augmented by its own call
        batches = Batches(0, data, 64, schedule)
        return [augment.augment(data.x_train[batches.indices(it)], spec, generator(0, "augment", it))
                for it in range(schedule.iters_per_epoch)]

    ours, before = best_seconds(per_epoch, repeats), best_seconds(per_batch, repeats)
    return {"what": f"one augmented digits epoch ({schedule.iters_per_epoch} batches of 64): draws and one "
                    "augmentation call for the epoch vs a call per batch",
            "globalmin_ms": round(1e3 * ours, 2), "replaced_ms": round(1e3 * before, 2),
            "speedup": round(before / ours, 2),
            "bit_identical": all(torch.equal(a, b) for a, b in zip(per_epoch(), per_batch()))}


# ------------------------------------------------------------------------------------------------- --twins

MAIN = "import sys; from globalmin.cli import main; sys.exit(main())"  # the job through the interpreter's teardown
# the ways out of a `globalmin` process; the last is cli.console as it was (REV): the stage's module imported, the
# objects made so far frozen out of the collector's passes, the stage, one collection, the flushes, os._exit
FLUSH_AND_EXIT = "gc.collect(); logging.shutdown(); sys.stdout.flush(); sys.stderr.flush(); os._exit(code)"
EXITS = {"teardown": MAIN,
         "os_exit": f"import gc, logging, os, sys\nfrom globalmin.cli import main\ncode = main()\n{FLUSH_AND_EXIT}",
         "os_exit_frozen": "import gc, importlib, logging, os, sys\nfrom globalmin.cli import COMMANDS, main\n"
                           "importlib.import_module(COMMANDS[sys.argv[1]].module)\ngc.freeze()\ncode = main()\n"
                           f"{FLUSH_AND_EXIT}"}


def rule_command(rule: str) -> str:
    """The command whose exit stands for a rule's: what the process loads decides what tearing it down costs."""
    if rule.startswith("train_") or rule in ("local_minima", "ntk"):
        return "local-minima"  # torch and torch.optim, which imports torch._dynamo on its first step
    if rule in ("prepare_data", "fc_theory", "beyond_ntk"):
        return "prepare"  # torch without torch.optim
    return "figure-ntk" if rule.startswith("figure_") else "claims"  # matplotlib and seaborn; or neither


def dag_jobs() -> dict[str, int]:
    """Jobs per rule of the default DAG from scratch (`snakemake --dry-run --forceall` on a clean copy); `all` runs
    no process and is left out."""
    with tempfile.TemporaryDirectory() as tmp:
        copy_workflow(Path(tmp))
        done = subprocess.run(["snakemake", "--dry-run", "--forceall", "--quiet", "rules", "--cores", "1"], cwd=tmp,
                              capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"snakemake --dry-run failed:\n{done.stderr[-2000:]}")
    counts = {}
    for line in (done.stdout + done.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "all"):
            counts[parts[0]] = int(parts[1])
    return counts


def source_tree(rev: str, dest: Path) -> Path:
    """The package source of git revision `rev`, extracted into `dest` and compiled; its src folder."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "src")], check=True)
    return dest / "src"


def process_seconds(argv: list[str], src: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one fresh process with package source `src` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed:\n{done.stderr[-2000:]}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def alternate(variants: dict[str, tuple[list[str], Path]], repeats: int) -> dict[str, dict]:
    """Each variant's process `repeats` times, alternated (A B C A B C ...): every time, and the medians."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (argv, src) in variants.items():
            times[name].append(process_seconds(argv, src))
    return {name: {"wall_s": [round(w, 3) for w, _ in ts], "cpu_s": [round(c, 3) for _, c in ts],
                   "median_wall_s": round(statistics.median(w for w, _ in ts), 3),
                   "median_cpu_s": round(statistics.median(c for _, c in ts), 3)} for name, ts in times.items()}


def verdict(with_twin: dict, without: dict, worth: float, bar: float, jobs: dict[str, int] | None = None) -> dict:
    """A twin's saving: median CPU (and wall) seconds without it less with it (per job of each command, times the
    DAG's jobs it stands for, when `jobs` is given), and what that is worth in the DAG's wall time against the bar
    (kept only above it)."""
    jobs = jobs or {"": 1}
    cpu = sum(n * (without[c]["median_cpu_s"] - with_twin[c]["median_cpu_s"]) for c, n in jobs.items())
    wall = sum(n * (without[c]["median_wall_s"] - with_twin[c]["median_wall_s"]) for c, n in jobs.items())
    return {"saved_cpu_s": round(cpu, 2), "saved_wall_s": round(wall, 2), "dag_wall_s": round(cpu * worth, 2),
            "bar_s": round(bar, 2), "keep": bool(cpu * worth > bar)}


def judge(record: dict, pipeline: Path) -> dict:
    """Each twin's saving against the DAG of `pipeline` (a pipeline_time.py record of the default DAG, best timed on
    the same machine as the jobs): a CPU-second saved is worth the DAG's wall/CPU, the bar is 5 % of its wall."""
    dag = json.loads(pipeline.read_text())
    worth, bar = dag["wall_seconds"] / dag["cpu_seconds_all_processes"], 0.05 * dag["wall_seconds"]
    record["dag"] = {"wall_s": dag["wall_seconds"], "cpu_s": dag["cpu_seconds_all_processes"],
                     "wall_per_cpu_s": round(worth, 3), "bar_s": round(bar, 2),
                     "source": str(pipeline.resolve().relative_to(REPO)) if pipeline.resolve().is_relative_to(REPO)
                     else str(pipeline), "machine": dag["machine"]}
    lm = {name: {"": times} for name, times in record["local_minima"]["variants"].items()}  # one job each
    nt = {name: {"": times} for name, times in record["ntk"]["variants"].items()}
    record["local_minima"]["first_order_gradient_and_lm_views"] = verdict(lm["before"], lm["now"], worth, bar)
    record["local_minima"]["jacobian"] = verdict(lm["now"], lm["now_library_jacobian"], worth, bar)
    record["ntk"]["gd_steps_and_jacobian"] = verdict(nt["before"], nt["now"], worth, bar)
    jobs = {c: sum(rules.values()) for c, rules in record["exit"]["stands_for"].items()}
    ways = {way: {c: times[way] for c, times in record["exit"]["variants"].items()} for way in EXITS}
    record["exit"]["os_exit"] = verdict(ways["os_exit"], ways["teardown"], worth, bar, jobs)
    record["exit"]["gc_freeze"] = verdict(ways["os_exit_frozen"], ways["os_exit"], worth, bar, jobs)
    return record


def same_frame(a: Path, b: Path) -> dict:
    """How two runs of a stage's CSV compare on their common columns: equal, or the largest relative difference;
    for the local-minimum study also the polishing iterations each used in all (the work its Jacobian does)."""
    x, y = pd.read_csv(a), pd.read_csv(b)
    common = [c for c in x if c in y]
    numeric = [c for c in common if x[c].dtype.kind == "f"]
    diff = max((float(((x[c] - y[c]).abs() / x[c].abs().clip(lower=1e-300)).max()) for c in numeric), default=0.0)
    out = {"file": a.name, "identical": bool(x[common].equals(y[common])), "max_relative_difference": diff}
    if "polish_iters_used" in common:
        out["polish_iters_used"] = [int(x.polish_iters_used.sum()), int(y.polish_iters_used.sum())]
    return out


def twins_record(rev: str, repeats: int) -> dict:
    """The --twins comparison: the study jobs with and without their twins, and the ways out of a process."""
    digits = REPO / "data" / "prepared" / "digits.pt"
    if not digits.exists():
        raise SystemExit(f"{digits} is missing: run `globalmin prepare --dataset digits --out {digits}` first")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    record: dict = {"before": subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], capture_output=True,
                                             text=True, check=True).stdout.strip(),
                    "now": subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                          capture_output=True, text=True, check=True).stdout.strip()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # copies of both trees: what is timed stays put while the working tree is edited
        before, now = source_tree(rev, tmp / "before"), tmp / "now" / "src"
        shutil.copytree(REPO / "src", now, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(now)], check=True)
        library = [shutil.copy(REPO / "benchmarks" / "torch_func_jacobian.py", tmp / "now")]

        def job(command: str, cfg: dict, entry: list[str], src: Path, out: str) -> tuple[list[str], Path]:
            return ([sys.executable, *entry, command, "--data", str(digits), "--config", json.dumps(cfg),
                     "--out-dir", str(tmp / out)], src)

        lm_cfg, ntk_cfg = config["local_minima"], config["ntk"]
        lm = alternate({"before": job("local-minima", lm_cfg, ["-c", MAIN], before, "lm_before"),
                        "now": job("local-minima", lm_cfg, ["-c", MAIN], now, "lm_now"),
                        "now_library_jacobian": job("local-minima", lm_cfg, library, now, "lm_library")}, repeats)
        record["local_minima"] = {
            "what": "`globalmin local-minima` with config/config.yaml's local_minima section, through the "
                    "interpreter's teardown: REV (written-out first-order gradient, globalmin.optim's Adam on one "
                    "flat vector, Levenberg-Marquardt's trial steps written into one vector the parameters view, "
                    "written-out Jacobian) vs now (autograd and torch.optim.Adam, nn.utils.vector_to_parameters, "
                    "written-out Jacobian) vs now with vmap(jacrev) of one point for the Jacobian",
            "variants": lm,
            "outputs": [same_frame(tmp / "lm_before" / "runs.csv", tmp / "lm_now" / "runs.csv"),
                        same_frame(tmp / "lm_now" / "runs.csv", tmp / "lm_library" / "runs.csv")]}
        nt = alternate({"before": job("ntk", ntk_cfg, ["-c", MAIN], before, "ntk_before"),
                        "now": job("ntk", ntk_cfg, ["-c", MAIN], now, "ntk_now")}, repeats)
        record["ntk"] = {
            "what": "`globalmin ntk` with config/config.yaml's ntk section, through the interpreter's teardown: REV "
                    "(written-out GD steps and Jacobian) vs now (autograd with torch.optim.SGD, jacrev)",
            "variants": nt,
            "outputs": [same_frame(tmp / "ntk_before" / f, tmp / "ntk_now" / f)
                        for f in ("runs.csv", "curves.csv", "memorisation.csv")]}

        # a local-minimum study of one tiny student: the imports and torch.optim's first step (torch._dynamo), as a
        # training job has them, with next to no computing, so that the exit is not lost in the job's spread
        lm_tiny = {**lm_cfg, "data": ["teacher"], "n": 8, "activations": ["tanh"], "depths": [1], "widths": [2],
                   "seeds": [0], "steps": 2, "polish_iters": 2, "rf_draws": 1}
        commands = {  # the commands whose exits stand for the DAG's (rule_command)
            "prepare": ["prepare", "--dataset", "digits", "--out", str(tmp / "digits.pt")],
            "local-minima": ["local-minima", "--data", str(digits), "--config", json.dumps(lm_tiny),
                             "--out-dir", str(tmp / "lm_test")],
            "figure-ntk": ["figure-ntk", "--inputs", f"runs={tmp / 'ntk_now' / 'runs.csv'}",
                           "--config", json.dumps({"depth": ntk_cfg["depth"]}), "--out-dir", str(tmp / "figures")],
            "claims": ["claims", "--fragments", str(tmp / "lm_now" / "claims.json"),
                       str(tmp / "ntk_now" / "claims.json"), "--out", str(tmp / "claims.json")]}
        exits = {name: alternate({way: ([sys.executable, "-c", code, *argv], now) for way, code in EXITS.items()},
                                 max(10, 4 * repeats)) for name, argv in commands.items()}
    jobs = dag_jobs()
    record["exit"] = {"what": "fresh `globalmin` processes leaving through the interpreter's teardown "
                              "(sys.exit(main())), through os._exit after gc.collect, and so with the imports frozen "
                              "out of that collection (gc.freeze: cli.console as it was), each command standing for "
                              "the DAG's jobs that load what it loads",
                      "dag_jobs": jobs, "variants": exits,
                      "stands_for": {name: {rule: n for rule, n in jobs.items() if rule_command(rule) == name}
                                     for name in commands}}
    return record


def main() -> None:
    """Run the comparisons (or with --twins, the job comparisons) and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="default 20 (kernels), 3 (--twins)")
    parser.add_argument("--twins", metavar="REV", default=None,
                        help="time the study jobs and the process exit against git revision REV's twins")
    parser.add_argument("--pipeline", type=Path, default=REPO / "benchmarks" / "results" / "pipeline-cpu-2core.json",
                        help="the DAG record the twins' savings are judged against (pipeline_time.py's)")
    parser.add_argument("--judge", metavar="RECORD", type=Path, default=None,
                        help="judge an existing --twins record against --pipeline again, without timing anything")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.judge:
        record = judge(json.loads(args.judge.read_text()), args.pipeline)
        write_record(record, args.out or str(args.judge), "study-twins")
        return
    torch.set_num_threads(1)
    if args.twins:
        measured = twins_record(args.twins, args.repeats or 3)
        record = {"machine": machine(torch=torch.__version__, threads=1), **judge(measured, args.pipeline),
                  # other work on a shared machine inflates every time measured: say how quiet it was
                  "load_average_after": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d")}
        write_record(record, args.out, "study-twins")
        return
    repeats = args.repeats or 20
    record = {"machine": machine(torch=torch.__version__, threads=1),
              "jacobian": jacobian_row(repeats), "trace_kernel": trace_kernel_row(max(3, repeats // 5)),
              "fc_theory_proofs": fc_proofs_row(), "epoch_augmentation": epoch_augmentation_row(repeats),
              "date": time.strftime("%Y-%m-%d")}
    write_record(record, args.out, "study-kernels")


if __name__ == "__main__":
    main()
