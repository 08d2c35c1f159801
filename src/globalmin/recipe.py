"""Stage `train_recipe`: A(base), phase 2 from base's state at tau, and its distance to the optimum of phase 2.

At tau (the reconstruction in docs/science.md): batch norm goes to eval mode (fixed statistics), the chosen
layers get seeded Gaussian noise N(0, (eps * std(W))^2), the expressivity condition is certified on the
perturbed features (float64; the float32 numerical rank beside it), then `base` keeps running, with its
optimizer, momentum buffers and learning-rate schedule, on the phase-2 parameters only, up to T.

Phase 2 on cached features: when only the head trains, the frozen body's output is the same at every step,
so it is computed once (train and test, eval mode) and the head trains and is scored on it. With augmentation
the training inputs change every step, so only the evaluation features are cached and each step runs the
frozen body forward (without gradients) on its augmented batch.

Distance to the optimum (runs without augmentation, head only, n <= recipe.optimum.max_n): phase 2 is a
strongly convex problem in the head (`optimum.py`); its exact optimum L* is solved in float64 on the
float64 features, and every epoch's head gets its gap L(W_t) - L*; the unregularised problem's infimum says
whether phase 2 can reach the network's global infimum (0) at all.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from globalmin import augment as aug
from globalmin import optimum
from globalmin.base import finish
from globalmin.certificate import certify, certify_model, choose_method, feature_matrix
from globalmin.models import WideHeadResNet, build_model, parameter_groups
from globalmin.optim import SGD
from globalmin.runinfo import generator, write_json
from globalmin.train import (Batches, CheckpointError, Loop, Resume, Speed, descend, evaluate_model,
                             load_tau_state, make_optimizer, run_id, score, set_lr, setup)

PHASE2_TRAINS = {"head": ("head",), "wide_head": ("wide", "head"), "all": ("body", "wide", "head")}
NOISE_ON = {"wide": ("wide",), "all_hidden": ("body", "wide"), "none": ()}


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """A(base) from each of one base run's tau-states (inputs 'tau_states') into the matching run folders
    (outputs 'run_dirs'); cfg is the recipe section. Returns the metrics written."""
    if len(inputs["tau_states"]) != len(outputs["run_dirs"]):
        raise ValueError("train-recipe needs one output folder per tau-state")
    recipe_cfg = {k: v for k, v in cfg.items() if k != "threads"}
    return [train_recipe(inputs["data"], state, out, recipe_cfg, cfg.get("threads"))
            for state, out in zip(inputs["tau_states"], outputs["run_dirs"])]


@torch.no_grad()
def perturb(model: WideHeadResNet, noise_on: str, scale: float, seed: int) -> list[str]:
    """Add N(0, (scale * std(W))^2) noise to the chosen layers' weights and biases (W: that layer's weight).

    Draws on the CPU from (seed, 'perturb') so the perturbation is reproducible on every device.
    """
    gen = generator(seed, "perturb")
    params = dict(model.named_parameters())
    targets = [n for role in NOISE_ON[noise_on] for n in parameter_groups(model)[role]]
    for name in targets:
        p = params[name]
        ref = params.get(name.rsplit(".", 1)[0] + ".weight", p)
        std = ref.float().std().item() if ref.numel() > 1 else ref.abs().item()
        p.add_((torch.randn(p.shape, generator=gen, dtype=torch.float32) * (scale * std)).to(p.device, p.dtype))
    return targets


def phase2_optimizer(model: WideHeadResNet, state: dict[str, Any], trains: str,
                     train_cfg: dict[str, Any]) -> tuple[SGD, list[str]]:
    """Freeze all but the phase-2 parameters; a fresh SGD on them that keeps base's momentum buffers."""
    groups = parameter_groups(model)
    names = [n for role in PHASE2_TRAINS[trains] for n in groups[role]]
    order = [n for n, _ in model.named_parameters() if n in names]
    params = dict(model.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in names)
    optimizer = make_optimizer([params[n] for n in order], train_cfg)
    old = state["optimizer"]["state"]
    index = {n: i for i, n in enumerate(state["param_names"])}
    sd = optimizer.state_dict()
    # copies: load_state_dict keeps the tensors it is given, and SGD updates momentum buffers in place
    sd["state"] = {i: copy.deepcopy(old[index[n]]) for i, n in enumerate(order) if index[n] in old}
    optimizer.load_state_dict(sd)
    return optimizer, order


@torch.no_grad()
def cached_features(model: WideHeadResNet, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The frozen body's output h_H(x) in eval mode, for every input, in the model's precision.

    Each batch is written into one preallocated n x m_H matrix, as certificate.feature_matrix does: concatenating
    the batches would hold the features twice (2 x 21.5 GB at SVHN's n = m_H = 73,257 in float32)."""
    out = torch.empty(len(x), model.wide.out_features, dtype=model.wide.weight.dtype, device=x.device)
    for i in range(0, len(x), batch_size):
        out[i:i + batch_size] = model.features(x[i:i + batch_size])
    return out


def phase2_step(model: WideHeadResNet, optimizer: SGD, batches: Batches, head_only: bool,
                train_features: torch.Tensor | None, speed: Speed) -> Callable[[int, float], torch.Tensor]:
    """One phase-2 iteration: the head on cached features (no augmentation), the head on the frozen body's output
    of an augmented batch, or, when more than the head trains, the whole network (in eval mode)."""
    device = batches.data.y_train.device

    def step(it: int, lr: float) -> torch.Tensor:
        set_lr(optimizer, lr)
        with speed.autocast(device):
            if train_features is not None:
                idx = batches.indices(it)
                logits, y = model.head(train_features[idx]), batches.data.y_train[idx]
            else:
                x, y = batches(it)
                if head_only:  # under bf16 autocast on CUDA, unlike the float32 cached features it is scored on
                    with torch.no_grad():
                        features = model.features(x)
                    logits = model.head(features)
                else:
                    logits = model(x)
            loss = F.cross_entropy(logits, y)
        return descend(optimizer, loss)

    return step


def train_recipe(data_path: str | Path, tau_state_path: str | Path, out_dir: str | Path, recipe_cfg: dict[str, Any],
                 threads: int | None = None) -> dict[str, Any]:
    """A(base) from one tau-state: BN to eval, perturb, certify, then `base` on the phase-2 parameters to T."""
    out_dir = Path(out_dir)
    state = load_tau_state(tau_state_path)
    model_cfg, train_cfg = state["config"]["model"], state["config"]["train"]
    seed, augmented, tau_fraction = state["seed"], state["augment"], state["tau_fraction"]
    condition = state.get("condition", {})
    data, schedule, milestones, device, speed = setup(data_path, augmented, train_cfg, tau_fraction, condition, threads)
    if asdict(schedule) != state["schedule"]:
        raise CheckpointError(f"tau-state {tau_state_path} was made for schedule {state['schedule']}, "
                              f"but this data and config give {asdict(schedule)}; rerun the base run")
    ablation = tau_fraction != state["config"]["tau_fraction"]
    rid = run_id(data.name, condition.get("name", "standard"), augmented, seed,
                 f"recipe_{tau_fraction:g}" if ablation else "recipe")
    model = build_model(model_cfg, data.x_train.shape[1], data.classes, data.n_train).to(device)
    model.load_state_dict(state["model"])
    model.eval()  # batch norm statistics are fixed for all of phase 2
    trains = recipe_cfg["phase2_trains"]
    optimizer, trained = phase2_optimizer(model, state, trains, train_cfg)
    resume = Resume(out_dir, rid, {"tau_state": {k: state[k] for k in ("run_id", "iteration", "config")},
                                   "recipe": recipe_cfg}, train_cfg.get("resume_seconds"))
    batch = train_cfg["eval_batch_size"]
    loop = Loop(rid, "recipe", seed, schedule, train_cfg, milestones, lambda it, lr: torch.zeros(()), lambda: {})
    saved = resume.load(loop)
    fresh = saved is None or "certificate" not in resume.extra  # an older resume file without one: start over
    phi = None  # the perturbed network's float64 features, when computed for the certificate
    if fresh:
        loop.rows, resume.extra = [], {}
        perturbed = perturb(model, recipe_cfg["noise_on"], recipe_cfg["noise_scale"], seed)
        phi = features64(model, data.x_train, recipe_cfg, batch)
        resume.extra.update(certificate={**certificate_at_tau(model, data.x_train, recipe_cfg, batch, phi),
                                         "run_id": rid, "stage": "tau", "iteration": schedule.tau,
                                         "perturbed": perturbed, "noise_scale": recipe_cfg["noise_scale"]},
                            heads=[])
        start = schedule.tau
    else:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        start = saved["iteration"]
    cached = trains == "head"
    train_features = cached_features(model, data.x_train, batch) if cached and not augmented else None
    test_features = cached_features(model, data.x_test, batch) if cached else None
    spec = aug.spec_for(data.name) if augmented else None
    model.to(memory_format=speed.memory_format)
    loop.step = phase2_step(model, optimizer, Batches(seed, data, train_cfg["batch_size"], schedule, spec,
                                                      speed.memory_format), cached, train_features, speed)
    loop.evaluate = phase2_evaluator(model, data, train_features, test_features, batch, speed)
    # the head at tau and at every epoch end (for the gap curve), as tensors: the resume file pickles them each
    # epoch, and nested Python lists of floats made that cost two thirds of an augmented run (measured)
    heads: list[torch.Tensor] = resume.extra["heads"]

    def head_now() -> torch.Tensor:
        return torch.cat([model.head.weight.detach(), model.head.bias.detach()[:, None]], 1).double().cpu()

    def epoch_end(done: int) -> None:
        heads.append(head_now())
        resume.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, loop, done)

    if fresh:  # the first curve row: the perturbed network at tau
        loop.log_row(schedule.tau, 2, loop.lr(schedule.tau))
        heads.append(head_now())
    certificate = resume.extra["certificate"]
    write_json(out_dir / "certificate.json", certificate)
    loop.run(start, schedule.total, phase=2, epoch_end=epoch_end)
    meta = {"run_id": rid, "algorithm": "recipe", "tau_fraction": tau_fraction, "tau_ablation": ablation,
            "dataset": data.name, "condition": condition, "augment": augmented, "seed": seed,
            "schedule": asdict(schedule), "m_H": model.wide.out_features, "n_train": data.n_train,
            "phase2_parameters": trained, "config": {**state["config"], "recipe": recipe_cfg},
            "certificate": certificate,
            "phase2_problem": distance_to_optimum(model, data, loop.rows, heads, recipe_cfg, train_cfg,
                                                  augmented, batch, phi)}
    return finish(model, loop, out_dir, meta, device, resume)


def phase2_evaluator(model: WideHeadResNet, data: Any, train_features: torch.Tensor | None,
                     test_features: torch.Tensor | None, batch: int,
                     speed: Speed = Speed()) -> Callable[[], dict[str, float]]:
    """Score the current head: on cached features where they exist, else the whole network in eval mode."""
    if test_features is None:
        return lambda: evaluate_model(model, data, batch, speed)
    if train_features is None:  # augmented: training features are not cached, but un-augmented ones are scored
        train_features = cached_features(model, data.x_train, batch)

    def evaluate() -> dict[str, float]:
        with torch.no_grad(), speed.autocast(data.y_train.device):
            train_objective, train_error = score(model.head, train_features, data.y_train, batch)
            _, test_error = score(model.head, test_features, data.y_test, batch)
        return {"train_objective": train_objective, "train_error": train_error, "test_error": test_error}

    return evaluate


def features64(model: WideHeadResNet, x: torch.Tensor, recipe_cfg: dict[str, Any], batch: int) -> np.ndarray | None:
    """The perturbed network's float64 features, kept for the certificate and the optimum when the exact SVD
    certifies (small n); None when the QR certificate factorises them in place (large n)."""
    if choose_method(len(x), recipe_cfg.get("certificate_method", "auto")) != "svd":
        return None
    return feature_matrix(model, x, batch).cpu().numpy()


def certificate_at_tau(model: WideHeadResNet, x: torch.Tensor, recipe_cfg: dict[str, Any], batch: int,
                       phi: np.ndarray | None = None) -> dict[str, Any]:
    """The expressivity certificate of the perturbed network's features on the n training inputs."""
    if phi is not None:
        return certify(phi, "svd")
    method = choose_method(len(x), recipe_cfg.get("certificate_method", "auto"))
    return certify_model(model, x, method, batch, recipe_cfg.get("certificate_scratch"))


def distance_to_optimum(model: WideHeadResNet, data: Any, rows: list[dict[str, Any]], heads: list[torch.Tensor],
                        recipe_cfg: dict[str, Any], train_cfg: dict[str, Any], augmented: bool,
                        batch: int, phi: np.ndarray | None = None) -> dict[str, Any]:
    """Phase 2's convex problem on the float64 features: L*, each curve row's gap L(W_t) - L* (added to the
    rows), and the unregularised infimum. Only for head-only phase 2 without augmentation and n <= max_n."""
    settings = recipe_cfg.get("optimum", {})
    why = ("augmented: phase 2 minimises the augmented loss, not this problem" if augmented else
           "more than the head trains in phase 2" if recipe_cfg["phase2_trains"] != "head" else
           f"n = {data.n_train} > recipe.optimum.max_n" if data.n_train > settings.get("max_n", 4096) else None)
    if why is not None:
        return {"computed": False, "why": why}
    if phi is None:  # a resumed run, or a QR-certified one: the frozen features are computed again
        phi = feature_matrix(model, data.x_train, batch).cpu().numpy()
    problem = optimum.Problem(phi, data.y_train.cpu().numpy(), data.classes, train_cfg["weight_decay"])
    final, start = heads[-1].numpy(), heads[0].numpy()
    best = optimum.solve(problem, final, settings.get("max_iterations", 5000), settings.get("error_bound", 1e-7))
    infimum = optimum.infimum_unregularised(problem, final, settings.get("max_iterations", 5000),
                                            grad_tol=settings.get("grad_tol", 1e-6))
    for row, head in zip(rows, heads):  # one head per curve row: at tau, then at every epoch end
        w = head.numpy()
        row.update(objective64=problem.objective(w), gap=problem.objective(w) - best["objective"],
                   loss64=problem.loss(w))
    phi_test = feature_matrix(model, data.x_test, batch).cpu().numpy()
    test_logits = np.hstack([phi_test, np.ones((len(phi_test), 1))]) @ best["w"].T
    gap_tau, gap_final = rows[0]["gap"], rows[-1]["gap"]
    return {"computed": True, "weight_decay": train_cfg["weight_decay"], "rank_features_and_bias": problem.rank,
            "optimum_objective": best["objective"], "optimum_error_bound": best["error_bound"],
            "optimum_converged": best["converged"], "optimum_iterations": best["iterations"],
            "optimum_train_error": best["train_error"], "optimum_loss": best["loss"],
            "optimum_test_error": 100.0 * float((test_logits.argmax(1) != data.y_test.cpu().numpy()).mean()),
            "gap_at_tau": gap_tau, "gap_final": gap_final,
            "gap_ratio": gap_final / gap_tau if gap_tau > 0 else None,
            "start_objective": problem.objective(start),
            "unregularised": {k: v for k, v in infimum.items() if k != "w"}}
