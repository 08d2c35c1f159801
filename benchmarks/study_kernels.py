"""Time what this round made cheaper in the studies and the training jobs, each against the library call it replaced.

- The local-minimum study's Jacobian (`local_minima.jacobian`, back-propagation written out with autograd's own
  kernels) against vmap(jacrev) of one point, at the study's largest network (depth 3, width 16, 96 points, 3
  outputs), with whether the two are bit-identical.
- The beyond-NTK trace kernel (`beyond_ntk.trace_ntk`, per-point gradients) against jacrev of the whole batch, on
  the default network of digits at the study's subset of 32 points, with their largest relative difference.
- The NTK study's kernel (`ntk.empirical_ntk`, the Jacobian written out into one matrix) against jacrev of the
  batch and a concatenation, at the study's widest network (m 1,024, depth 2, 16 points), with their largest
  relative difference.
- The fully-connected theory check's proofs in ball arithmetic (`fc_theory.rank_n_in_ball_arithmetic`, the
  determinant of an n x n minor of Phi) against the determinant of Phi Phi^T it replaced, over every network of
  the default grid that float64 cannot decide, with the precision each needed and whether they decide alike.
- The NTK study's gradient-descent run at its widest network (`ntk.train_gd`, m 1,024, depth 2, 300 steps; the
  gradient written out and added into each weight in place) against the same run with the step it replaced
  (autograd's gradients, a dot product for their norm, p.sub_).
- The local-minimum study's first-order phase over its default grid (`local_minima.first_order`: the gradient
  written out with autograd's kernels, one Adam update of one flat vector) against autograd and a per-tensor
  update, with whether every student ends bit-identical.
- An augmented digits epoch's batches (`train.Batches`, the epoch augmented in one call) against an augmentation
  call per batch, with whether the batches are bit-identical.
- The start-up of a training process's optimizer: the CPU seconds of a fresh interpreter that builds and steps
  torch.optim.SGD, against one that builds and steps `globalmin.optim.SGD` (torch imported in both), and
  whether torch._dynamo was imported.
- A `globalmin` process's exit: the console entry (os._exit once the stage has returned) against the
  interpreter's teardown, on a fresh `prepare` of digits.
One thread, as the pipeline's jobs run. Usage: python benchmarks/study_kernels.py [--repeats 20] [--out FILE]
Writes benchmarks/results/study-kernels-<machine>.json. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
import yaml
from torch.func import functional_call, jacrev, vmap

from globalmin import beyond_ntk, fc_theory, ntk
from globalmin import data as datamod
from globalmin import local_minima as lm
from globalmin.certificate import certify
from globalmin.models import init_model

from workspace import REPO, machine, write_record  # noqa: E402  (benchmarks/ is the script's folder)

DIGITS_MODEL = {"widths": [16, 32], "blocks": [1, 1], "wide_width": None, "require_expressivity": True,
                "wide_activation": "tanh"}
STARTUP = """
import resource, sys, torch
m = torch.nn.Linear(64, 10)
{make}
for _ in range(3):
    opt.zero_grad(); m(torch.ones(8, 64)).sum().backward(); opt.step()
used = resource.getrusage(resource.RUSAGE_SELF)
print(used.ru_utime + used.ru_stime, 'torch._dynamo' in sys.modules)
"""


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
    model = lm.build_student(8, 16, 3, 3, "tanh", 0)
    params = lm.parameters(model)
    x = torch.randn(96, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def library() -> torch.Tensor:
        jac = vmap(jacrev(lambda p, xi: functional_call(model, p, (xi[None],)).reshape(-1)), in_dims=(None, 0))(
            params, x)
        return torch.cat([b.reshape(96 * 3, -1) for b in jac.values()], 1)

    ours, theirs = best_seconds(lambda: lm.jacobian(model, params, x), repeats), best_seconds(library, repeats)
    return {"what": "local_minima.jacobian vs vmap(jacrev) of one point (depth 3, width 16, n 96, 3 outputs)",
            "globalmin_ms": round(ours * 1e3, 3), "library_ms": round(theirs * 1e3, 3),
            "speedup": round(theirs / ours, 2), "bit_identical": bool(torch.equal(lm.jacobian(model, params, x)[0],
                                                                                    library()))}


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


def ntk_kernel_row(repeats: int) -> dict:
    """The NTK study's empirical kernel against jacrev of the batch, concatenated."""
    trained = ntk.init_network(8, 1024, 2, 1, 0)
    fixed = {"A": trained.pop("A"), "B": trained.pop("B")}
    x = ntk.sphere_inputs(16, 8, 0)

    def library() -> torch.Tensor:
        jac = jacrev(lambda p: ntk.forward(p, fixed, x).reshape(-1))(trained)
        flat = torch.cat([j.reshape(j.shape[0], -1) for j in jac.values()], dim=1)
        return flat @ flat.T

    ours, theirs = best_seconds(lambda: ntk.empirical_ntk(trained, fixed, x), repeats), best_seconds(library, repeats)
    expected = library()
    return {"what": "ntk.empirical_ntk vs jacrev of the batch and a concatenation (m 1024, depth 2, 16 points)",
            "globalmin_s": round(ours, 3), "library_s": round(theirs, 3), "speedup": round(theirs / ours, 2),
            "max_relative_difference": float((ntk.empirical_ntk(trained, fixed, x) - expected).abs().max()
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


def ntk_gd_row(repeats: int) -> dict:
    """ntk.train_gd at m 1,024, depth 2 against the same run with the autograd GD step it replaced."""
    x = ntk.sphere_inputs(16, 8, 0)
    y = torch.randn(16, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def replaced_step_run() -> float:  # the loop of train_gd before, without the metrics both share
        params = ntk.init_network(8, 1024, 2, 1, 0)
        fixed = {"A": params.pop("A"), "B": params.pop("B")}
        eta = 1.0 / float(torch.linalg.eigvalsh(ntk.empirical_ntk(params, fixed, x))[-1])
        trained = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        for _ in range(300):
            loss = 0.5 * ((ntk.forward(trained, fixed, x) - y) ** 2).sum()
            grads = torch.autograd.grad(loss, list(trained.values()))
            grad_sq, value = torch.stack([sum(torch.dot(g.flatten(), g.flatten()) for g in grads),
                                          loss.detach()]).tolist()
            _ = grad_sq / value
            with torch.no_grad():
                for p, g in zip(trained.values(), grads):
                    p.sub_(g, alpha=eta)
        return math.nan

    ours = best_seconds(lambda: ntk.train_gd(x, y, 1024, 2, 0, 1.0, 300), repeats)
    before = best_seconds(replaced_step_run, repeats)
    return {"what": "ntk.train_gd (m 1024, depth 2, 300 steps; written-out gradient added into W in place) vs its "
                    "loop with the replaced step (autograd's m x m gradients, a dot product for the norm, p.sub_); "
                    "ours includes the run's kernels and metrics, the replaced loop does not",
            "globalmin_s": round(ours, 3), "replaced_s": round(before, 3), "speedup": round(before / ours, 2)}


def lm_first_order_row(repeats: int) -> dict:
    """The local-minimum study's first-order phase over its default grid (144 students, 300 full-batch Adam steps
    each; `local_minima.first_order`: gradient written out, one update of one flat vector) against the loop it
    replaced (autograd's backward, then the update of every parameter tensor), with whether every student ends
    bit-identical."""
    from globalmin.optim import Adam
    from globalmin.runinfo import derive_seed

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["local_minima"]
    prepared = {"digits": str(REPO / "data" / "prepared" / "digits.pt")}
    grid = [(lm.make_data(kind, cfg, prepared), kind, activation, depth, width, seed) for kind in cfg["data"]
            for activation in cfg["activations"]
            for depth, width, seed in itertools.product(cfg["depths"], cfg["widths"], cfg["seeds"])]

    def replaced(model: lm.Student, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> None:
        opt = Adam(list(model.parameters()), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * ((model(x) - y) ** 2).sum()).backward()
            opt.step()

    def phase(train: Callable[..., None]) -> tuple[float, list[torch.Tensor]]:
        finals, start = [], time.perf_counter()
        for (x, y), kind, activation, depth, width, seed in grid:
            model = lm.build_student(x.shape[1], width, depth, y.shape[1], activation,
                                     derive_seed(seed, "lm-init", kind, activation, depth, width))
            train(model, x, y, cfg["lr"], cfg["steps"])
            finals.append(torch.nn.utils.parameters_to_vector(model.parameters()).detach())
        return time.perf_counter() - start, finals

    ours = [phase(lambda m, x, y, lr, steps: lm.first_order(m, x, y, "adam", lr, steps)) for _ in range(repeats)]
    before = [phase(replaced) for _ in range(repeats)]
    best, best_before = min(t for t, _ in ours), min(t for t, _ in before)
    return {"what": f"local_minima.first_order over the default grid ({len(grid)} students, {cfg['steps']} Adam "
                    "steps each): written-out gradient and one flat update vs autograd and a per-tensor update",
            "globalmin_s": round(best, 3), "replaced_s": round(best_before, 3),
            "speedup": round(best_before / best, 2),
            "bit_identical": all(torch.equal(a, b) for a, b in zip(ours[0][1], before[0][1]))}


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


def console_exit_row(repeats: int) -> dict:
    """Wall seconds of a fresh `globalmin prepare` (digits) process that leaves through the console entry
    (`cli.console`: os._exit once the stage has returned) against one that leaves through the interpreter's
    teardown (`sys.exit(cli.main())`, as before), alternated, best and median of `repeats` each."""
    import statistics
    import tempfile

    entries = {"console": "from globalmin.cli import console; console()",
               "teardown": "import sys; from globalmin.cli import main; sys.exit(main())"}
    times: dict[str, list[float]] = {name: [] for name in entries}
    with tempfile.TemporaryDirectory() as tmp:
        args = ["prepare", "--dataset", "digits", "--out", f"{tmp}/digits.pt"]
        for _ in range(repeats):
            for name, code in entries.items():
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", code, *args], capture_output=True, check=True)
                times[name].append(time.perf_counter() - start)
    row: dict = {"what": "wall seconds of a fresh `globalmin prepare --dataset digits` process (torch imported): "
                         "leaving with os._exit after the stage vs through the interpreter's teardown"}
    for name, values in times.items():
        row[f"{name}_best_s"], row[f"{name}_median_s"] = round(min(values), 3), round(statistics.median(values), 3)
    row["saved_median_s"] = round(row["teardown_median_s"] - row["console_median_s"], 3)
    return row


def startup_row(repeats: int) -> dict:
    """CPU seconds of a fresh process that steps torch.optim.SGD against one that steps globalmin.optim.SGD."""
    makes = {"torch_optim": "opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)",
             "globalmin_optim": "from globalmin.optim import SGD\n"
                                "opt = SGD(list(m.parameters()), lr=0.1, momentum=0.9)"}
    row: dict = {"what": "CPU seconds of a fresh process: import torch, build and step the optimizer 3 times"}
    for name, make in makes.items():
        runs = [subprocess.run([sys.executable, "-c", STARTUP.format(make=make)], capture_output=True, text=True,
                               check=True).stdout.split() for _ in range(repeats)]
        row[f"{name}_cpu_s"] = round(min(float(r[0]) for r in runs), 3)
        row[f"{name}_imports_dynamo"] = runs[0][1] == "True"
    row["saved_cpu_s"] = round(row["torch_optim_cpu_s"] - row["globalmin_optim_cpu_s"], 3)
    return row


def main() -> None:
    """Run the comparisons and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    record = {"machine": machine(torch=torch.__version__, threads=1),
              "jacobian": jacobian_row(args.repeats), "trace_kernel": trace_kernel_row(max(3, args.repeats // 5)),
              "ntk_kernel": ntk_kernel_row(max(3, args.repeats // 5)),
              "ntk_gd": ntk_gd_row(max(3, args.repeats // 10)), "fc_theory_proofs": fc_proofs_row(),
              "epoch_augmentation": epoch_augmentation_row(args.repeats),
              "lm_first_order": lm_first_order_row(max(2, args.repeats // 10)),
              "optimizer_startup": startup_row(max(3, args.repeats // 4)),
              "console_exit": console_exit_row(max(5, args.repeats // 2)), "date": time.strftime("%Y-%m-%d")}
    write_record(record, args.out, "study-kernels")


if __name__ == "__main__":
    main()
