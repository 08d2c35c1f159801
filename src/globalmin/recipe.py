"""Stage `train_recipe`: A(base), phase 2 from base's state at tau, and its distance to the optimum of phase 2.

The switch at tau is the library's (`api.Recipe.transition`): batch norm pinned to eval mode, seeded noise on the
wide layer, the certificate on the perturbed features (and, for comparison, on the unperturbed ones), and every
parameter but the head's removed from base's own optimizer, which then keeps running with its state and the
learning-rate schedule up to T. This stage adds what a replication measures around it.

Phase 2 on cached features: when only the head trains, the frozen body's output is the same at every step,
so it is computed once (train and test, eval mode) and the head trains and is scored on it. With augmentation
the training inputs change every step, so only the evaluation features are cached and each step runs the
frozen body forward (without gradients) on its augmented batch.

Distance to the optimum (runs without augmentation, head only, n <= recipe.optimum.max_n): phase 2 is a convex
problem in the head (`optimum.py`); its exact optimum L* is solved in float64 on the float64 features, and every
epoch's head gets its gap L(W_t) - L*; the unregularised problem's infimum says whether phase 2 can reach the
network's global infimum (0) at all. Then phase 2 continues past T on the cached features for
recipe.horizon.epochs with the same optimizer (`horizon.py`): base's schedule gives phase 2 too few iterations to
converge, and the guarantee is asymptotic.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from globalmin import augment as aug
from globalmin import horizon, optimizers, optimum
from globalmin.api import Recipe
from globalmin.certificate import feature_matrix
from globalmin.models import WideHeadResNet, build_model
from globalmin.runinfo import write_json, write_text
from globalmin.runfiles import CheckpointError, Resume, finish, load_tau_state, rows_to_csv, run_id
from globalmin.train import (Batches, Loop, Speed, descend, evaluate_model, make_optimizer, objective, predict, score,
                             set_lr, setup, timed)


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """A(base) from each of one base run's tau-states (inputs 'tau_states') into the matching run folders
    (outputs 'run_dirs'); cfg is the recipe section, with `expect` (the base run's id and config hash) where the
    workflow checks that the tau-states are its own. Returns the metrics written."""
    if len(inputs["tau_states"]) != len(outputs["run_dirs"]):
        raise ValueError("train-recipe needs one output folder per tau-state")
    recipe_cfg = {k: v for k, v in cfg.items() if k not in ("threads", "expect")}
    return [train_recipe(inputs["data"], state, out, recipe_cfg, cfg.get("threads"), cfg.get("expect"))
            for state, out in zip(inputs["tau_states"], outputs["run_dirs"])]


def phase2_step(model: WideHeadResNet, optimizer: torch.optim.Optimizer, batches: Batches, head_only: bool,
                train_features: torch.Tensor | None, speed: Speed,
                loss: str = "cross_entropy") -> Callable[[int, float], torch.Tensor]:
    """One phase-2 iteration: the head on cached features (no augmentation), the head on the frozen body's output
    of an augmented batch, or, when more than the head trains, the whole network (batch norm pinned to eval)."""
    device = batches.data.y_train.device

    def step(it: int, lr: float) -> torch.Tensor:
        set_lr(optimizer, lr)
        with speed.autocast(device):
            if train_features is not None:
                idx = batches.indices(it)
                # index_select, not train_features[idx]: the same rows, a fifth of the time for 64 rows of an n x m_H
                # matrix on this CPU (34 against 160 us, by hand), in every step of phase 2 and its horizon
                logits, y = model.head(train_features.index_select(0, idx)), batches.data.y_train[idx]
            else:
                x, y = batches(it)
                if head_only:  # under bf16 autocast on CUDA, unlike the float32 cached features it is scored on
                    with torch.no_grad():
                        features = model.features(x)
                    logits = model.head(features)
                else:
                    logits = model(x)
            value = objective(logits, y, loss)
        return descend(optimizer, value)

    return step


def phase2_evaluator(model: WideHeadResNet, data: Any, train_features: torch.Tensor | None,
                     test_features: torch.Tensor | None, batch: int, speed: Speed = Speed(),
                     loss: str = "cross_entropy") -> Callable[[], dict[str, float]]:
    """Score the current head: on cached features where they exist, else the whole network in eval mode."""
    if test_features is None:
        return lambda: evaluate_model(model, data, batch, speed, loss)
    if train_features is None:  # augmented: training features are not cached, but un-augmented ones are scored
        train_features = cached(model, data.x_train, batch)

    def evaluate() -> dict[str, float]:
        with torch.no_grad(), speed.autocast(data.y_train.device):
            train_objective, train_error = score(model.head, train_features, data.y_train, batch, loss)
            _, test_error = score(model.head, test_features, data.y_test, batch, loss)
        return {"train_objective": train_objective, "train_error": train_error, "test_error": test_error}

    return evaluate


def cached(model: WideHeadResNet, x: torch.Tensor, batch: int) -> torch.Tensor:
    """The frozen body's output h_H(x) in the model's precision, every input written into one matrix."""
    return feature_matrix(model, x, batch, head="head", dtype=model.head.weight.dtype)


def train_recipe(data_path: str | Path, tau_state_path: str | Path, out_dir: str | Path, recipe_cfg: dict[str, Any],
                 threads: int | None = None, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """A(base) from one tau-state: the switch (api.Recipe), then base on the phase-2 parameters to T."""
    out_dir = Path(out_dir)
    state = load_tau_state(tau_state_path, expect)
    model_cfg, train_cfg = state["config"]["model"], state["config"]["train"]
    seed, augmented, tau_fraction = state["seed"], state["augment"], state["tau_fraction"]
    condition = state["condition"]  # base's resolved condition: name, labels, label_seed, loss
    loss = condition["loss"]
    data, schedule, milestones, device, speed = setup(data_path, augmented, train_cfg, tau_fraction, condition,
                                                      threads, state.get("data_seed"))
    if asdict(schedule) != state["schedule"]:
        raise CheckpointError(f"tau-state {tau_state_path} was made for schedule {state['schedule']}, "
                              f"but this data and config give {asdict(schedule)}; rerun the base run")
    ablation = tau_fraction != state["config"]["tau_fraction"]
    rid = run_id(data.name, condition["name"], augmented, seed,
                 f"recipe_{tau_fraction:g}" if ablation else "recipe")
    model = build_model(model_cfg, data.x_train.shape[1], data.classes, data.n_train).to(device)
    model.load_state_dict(state["model"])
    model.eval()  # batch norm statistics are fixed for all of phase 2 (the Recipe pins them)
    optimizer = make_optimizer(model.parameters(), train_cfg)
    optimizer.load_state_dict(state["optimizer"])  # base's state at tau: momentum buffers, Adam's moments, ...
    batch = train_cfg["eval_batch_size"]
    recipe = Recipe(model, optimizer, schedule.tau, data.x_train, wide="wide", head="head",
                    trains=recipe_cfg["phase2_trains"], noise_on=recipe_cfg["noise_on"],
                    noise_scale=recipe_cfg["noise_scale"], seed=seed, method=recipe_cfg["certificate_method"],
                    scratch=recipe_cfg.get("certificate_scratch"), batch_size=batch, certify_unperturbed=True,
                    keep_features=wants_optimum(recipe_cfg, augmented, data.n_train))
    resume = Resume(out_dir, rid, {"tau_state": {k: state.get(k) for k in ("run_id", "iteration", "config",
                                                                           "config_hash")},
                                   "recipe": recipe_cfg}, train_cfg.get("resume_seconds"))
    loop = Loop(rid, "recipe", seed, schedule, train_cfg, milestones, lambda it, lr: torch.zeros(()), lambda: {})
    saved = resume.load(loop)
    fresh = saved is None or "recipe" not in saved  # a resume file of an older version has no Recipe state
    if fresh:
        loop.rows = []
        resume.extra = {"heads": [], "base_predictions": predict(model, data.x_test, batch).cpu()}
        recipe.iteration = schedule.tau
        with timed(rid, f"switch at tau: perturb, certify (n = {data.n_train}, m_H = {model.wide.out_features})"):
            recipe.transition()
        start = schedule.tau
    else:
        model.load_state_dict(saved["model"])
        recipe.load_state_dict(saved["recipe"])  # pins and freezes again: before the phase-2 optimizer's state
        optimizer.load_state_dict(saved["optimizer"])
        start = saved["iteration"]
    head_only = recipe_cfg["phase2_trains"] == "head"
    train_features = cached(model, data.x_train, batch) if head_only and not augmented else None
    test_features = cached(model, data.x_test, batch) if head_only else None
    spec = aug.spec_for(data) if augmented else None
    model.to(memory_format=speed.memory_format)
    batches = Batches(seed, data, train_cfg["batch_size"], schedule, spec, speed.memory_format)
    loop.step = phase2_step(model, optimizer, batches, head_only, train_features, speed, loss)
    loop.evaluate = phase2_evaluator(model, data, train_features, test_features, batch, speed, loss)
    # the head at tau and at every epoch end (for the gap curve), as tensors: the resume file pickles them each
    # epoch, and nested Python lists of floats made that most of an augmented run's time (timed once by hand)
    heads: list[torch.Tensor] = resume.extra["heads"]

    def head_now() -> torch.Tensor:
        return torch.cat([model.head.weight.detach(), model.head.bias.detach()[:, None]], 1).double().cpu()

    def epoch_end(done: int) -> None:
        heads.append(head_now())
        resume.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "recipe": recipe.state_dict()}, loop, done)

    if fresh:  # the first curve row: the perturbed network at tau
        loop.log_row(schedule.tau, 2, loop.lr(schedule.tau))
        heads.append(head_now())
    certificate = {**recipe.certificate.as_dict(), "unperturbed": recipe.certificate_unperturbed.as_dict(),
                   "run_id": rid, "stage": "tau", "iteration": schedule.tau, "perturbed": recipe.perturbed,
                   "noise_scale": recipe_cfg["noise_scale"]}
    write_json(out_dir / "certificate.json", certificate)
    loop.run(start, schedule.total, phase=2, epoch_end=epoch_end)
    changed = int((predict(model.head if test_features is not None else model,
                           test_features if test_features is not None else data.x_test, batch).cpu()
                   != resume.extra["base_predictions"]).sum())
    problem, rows = phase2_problem(model, data, loop, heads, recipe_cfg, train_cfg, augmented, batch, loss,
                                   train_features, test_features, recipe.features)
    write_text(out_dir / "horizon.csv", rows_to_csv(rows) if rows else "epoch\n")
    meta = {"run_id": rid, "algorithm": "recipe", "tau_fraction": tau_fraction, "tau_ablation": ablation,
            "dataset": data.name, "condition": condition, "augment": augmented, "seed": seed,
            "data_seed": state.get("data_seed"), "base": optimizers.settings_of(train_cfg)["name"],
            "schedule": asdict(schedule), "m_H": model.wide.out_features, "n_train": data.n_train,
            "n_test": len(data.y_test), "test_predictions_changed": changed,
            "phase2_parameters": recipe.trained_names(), "config": {**state["config"], "recipe": recipe_cfg},
            "certificate": certificate, "phase2_problem": problem}
    return finish(model, loop, out_dir, meta, device, resume)


def wants_optimum(recipe_cfg: dict[str, Any], augmented: bool, n: int) -> bool:
    """Whether phase 2's problem can be solved for this run (head only, no augmentation, n <= max_n): then the
    switch keeps the float64 features it certifies, instead of a second float64 pass for the solver."""
    return not augmented and recipe_cfg["phase2_trains"] == "head" and n <= recipe_cfg["optimum"]["max_n"]


def phase2_problem(model: WideHeadResNet, data: Any, loop: Loop, heads: list[torch.Tensor],
                   recipe_cfg: dict[str, Any], train_cfg: dict[str, Any], augmented: bool, batch: int, loss: str,
                   train_features: torch.Tensor | None, test_features: torch.Tensor | None = None,
                   phi: torch.Tensor | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Phase 2's convex problem on the float64 features: L*, each curve row's gap L(W_t) - L* (added to the rows),
    the unregularised infimum, and phase 2 continued past T (its rows, for horizon.csv). Only for head-only
    phase 2 without augmentation, n <= max_n and an optimizer whose weight decay is an L2 term."""
    settings = recipe_cfg["optimum"]
    weight_decay = optimizers.l2_weight(optimizers.settings_of(train_cfg))
    why = ("augmented: phase 2 minimises the augmented loss, not this problem" if augmented else
           "more than the head trains in phase 2" if recipe_cfg["phase2_trains"] != "head" else
           f"n = {data.n_train} > recipe.optimum.max_n" if data.n_train > settings["max_n"] else
           "decoupled weight decay minimises no regularised objective" if weight_decay is None else
           "the exact optimum needs weight decay > 0 (a strongly convex problem)" if weight_decay <= 0 else None)
    if why is not None:
        return {"computed": False, "why": why}, []
    if phi is None:  # a resumed run: the switch's features are gone, computed again
        phi = feature_matrix(model, data.x_train, batch, head="head")
    with timed(loop.run_id, f"phase 2's problem: SVD of the {data.n_train} x {phi.shape[1] + 1} features"):
        problem = optimum.Problem(phi.cpu().numpy(), data.y_train.cpu().numpy(), data.classes, weight_decay, loss)
    final, start = heads[-1].numpy(), heads[0].numpy()
    with timed(loop.run_id, "the exact optimum L* and the unregularised infimum"):
        best = optimum.solve(problem, final, settings["max_iterations"], settings["error_bound"])
        infimum = optimum.infimum_unregularised(problem, final, settings["max_iterations"],
                                                grad_tol=settings["grad_tol"])
    for row, head in zip(loop.rows, heads):  # one head per curve row: at tau, then at every epoch end
        w = head.numpy()
        row.update(objective64=problem.objective(w), gap=problem.objective(w) - best["objective"],
                   loss64=problem.loss(w))
    # the optimum's test error on the cached float32 test features, in float64 arithmetic: the float64 test
    # features would cost a float64 pass over the test set for the same test error (argmax) up to rounding
    phi_test = (test_features if test_features is not None else cached(model, data.x_test, batch)).double()
    phi_test = phi_test.cpu().numpy()
    gap_tau, gap_final = loop.rows[0]["gap"], loop.rows[-1]["gap"]
    summary = {"computed": True, "loss": loss, "weight_decay": weight_decay, "rank_features_and_bias": problem.rank,
               "optimum_objective": best["objective"], "optimum_error_bound": best["error_bound"],
               "optimum_converged": best["converged"], "optimum_iterations": best["iterations"],
               "optimum_train_error": best["train_error"], "optimum_loss": best["loss"],
               "optimum_test_error": optimum.test_error(best["w"], phi_test, data.y_test.cpu().numpy()),
               "gap_at_tau": gap_tau, "gap_final": gap_final,
               "gap_ratio": gap_final / gap_tau if gap_tau > 0 else None,
               "start_objective": problem.objective(start),
               "unregularised": {k: v for k, v in infimum.items() if k != "w"}}
    rows: list[dict[str, Any]] = []
    epochs = recipe_cfg["horizon"]["epochs"]
    if epochs and train_features is not None:
        at_t = copy.deepcopy(model.head.state_dict())
        with timed(loop.run_id, f"phase 2 continued past T: {epochs} epochs (the horizon)"):
            rows, summary["horizon"] = horizon.continue_phase2(loop, model.head, problem, best["objective"],
                                                               gap_tau, epochs, recipe_cfg["horizon"]["lr"])
        model.head.load_state_dict(at_t)  # the run's outputs are phase 2 at T; the horizon is measured beside them
    return summary, rows
