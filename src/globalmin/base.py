"""Stage `train_base`: the first-order algorithm `base` (train.optimizer: any torch.optim optimizer) on the whole
network, saving its state at every tau.

A(base) runs branch from these tau-states (`recipe.py`), so phase 1 is trained once for all of them. The run
also certifies the expressivity condition of its initial network (batch norm with its initial statistics).
Writes, in its run folder: model.pt, curve.csv, metrics.json, certificate_init.json, tau_state[_<f>].pt.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from globalmin import augment as aug
from globalmin.api import certify_model
from globalmin.models import init_model
from globalmin.runinfo import fingerprint, torch_bytes, write_bytes, write_json
from globalmin.runfiles import TAU_STATE_FORMAT, Resume, finish, run_id, tau_state_name
from globalmin.train import Batches, Loop, base_step, evaluate_model, make_optimizer, make_schedule, setup, timed

log = logging.getLogger(__name__)


def identity(cfg: dict[str, Any]) -> str:
    """The config hash a base run's tau-states carry, computed from what train-base is given (its settings, seed and
    augmentation; not its thread count): A(base) checks that a tau-state is the one its own base run wrote."""
    return fingerprint({k: v for k, v in cfg.items() if k != "threads"})


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Train one base run: cfg has model, train, condition (name and settings: labels, label_seed, loss), seed,
    data_seed (split, subset and labels; null: the seed), augment, tau_fraction, ablation (extra tau fractions) and
    certificate (method, scratch); inputs the prepared data; outputs the run folder. Returns the metrics written."""
    out_dir = Path(outputs["run_dir"])
    condition = cfg["condition"]
    augmented, seed = bool(cfg["augment"]), int(cfg["seed"])
    data_seed = seed if cfg["data_seed"] is None else int(cfg["data_seed"])
    model_cfg, train_cfg, loss = cfg["model"], cfg["train"], condition["loss"]
    data, schedule, milestones, device, speed = setup(inputs["data"], augmented, train_cfg, cfg["tau_fraction"],
                                                      condition, cfg.get("threads"), data_seed)
    rid = run_id(data.name, condition["name"], augmented, seed, "base")
    model = init_model(model_cfg, data.x_train.shape[1], data.classes, data.n_train, seed, device)
    optimizer = make_optimizer(model.parameters(), train_cfg)
    spec = aug.spec_for(data) if augmented else None
    batches = Batches(seed, data, train_cfg["batch_size"], schedule, spec, speed.memory_format)
    step = base_step(speed.prepare(model), optimizer, batches, speed, loss)
    loop = Loop(rid, "base", seed, schedule, train_cfg, milestones, step,
                lambda: evaluate_model(model, data, train_cfg["eval_batch_size"], speed, loss),
                train_cfg["eval_every"])
    meta = {"run_id": rid, "dataset": data.name, "condition": condition, "augment": augmented, "seed": seed,
            "data_seed": data_seed, "config_hash": identity(cfg), "schedule": asdict(schedule),
            "config": {"model": model_cfg, "train": train_cfg, "tau_fraction": cfg["tau_fraction"]}}
    stops = tau_stops(data.n_train, train_cfg["batch_size"], schedule.epochs, cfg["tau_fraction"],
                      cfg["ablation"])

    def save_tau_states(it: int) -> None:
        if it not in stops:
            return
        if not any(r["iteration"] == it for r in loop.rows):  # every tau gets a curve row (base's state there)
            loop.log_row(it, 1, loop.lr(it - 1))
            model.train()
        for frac, name in stops[it]:
            tau_state = torch_bytes({
                "format": TAU_STATE_FORMAT, **meta, "schedule": {**asdict(schedule), "tau": it},
                "iteration": it, "tau_fraction": frac, "param_names": [n for n, _ in model.named_parameters()],
                "model": model.state_dict(), "optimizer": optimizer.state_dict()})
            write_bytes(out_dir / name, tau_state)
            # kept in the resume file too: Snakemake deletes a failed or preempted job's declared outputs, the
            # tau-states among them, and a resumed run must not have to start over to write them again
            resume.extra.setdefault("tau_states", {})[name] = tau_state

    certificate = cfg["certificate"]
    certify_init(model, data, out_dir, rid, certificate["method"], train_cfg["eval_batch_size"],
                 certificate["scratch"])
    resume = Resume(out_dir, rid, {**meta, "stops": stops}, train_cfg.get("resume_seconds"))
    state = restore_tau_states(resume.load(loop), resume, stops, out_dir)
    if state is None:
        start = 0
        loop.log_row(0, 1, loop.lr(0))
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["iteration"]
    model.train()
    loop.run(start, schedule.total, phase=1, before=save_tau_states,
             epoch_end=lambda done: resume.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()},
                                                loop, done))
    meta.update(algorithm="base", tau_fraction=cfg["tau_fraction"], tau_ablation=False,
                m_H=model.wide.out_features, n_train=data.n_train)
    return finish(model, loop, out_dir, meta, device, resume)


def restore_tau_states(state: dict[str, Any] | None, resume: Resume, stops: dict[int, list[tuple[float, str]]],
                       out_dir: Path) -> dict[str, Any] | None:
    """Write back the tau-states a resumed run passed (from its resume file) where they are missing; None (start
    over) if one cannot be restored."""
    if state is None:
        return None
    kept = resume.extra.get("tau_states", {})
    for tau, entries in stops.items():
        for _, name in entries:
            if tau < state["iteration"] and not (out_dir / name).exists():
                if name not in kept:
                    log.warning("%s: %s is missing and not in %s; starting over", resume.run_id, name, resume.path)
                    resume.extra = {}
                    return None
                write_bytes(out_dir / name, kept[name])
    return state


def tau_stops(n_train: int, batch_size: int, epochs: int, tau_fraction: float,
              ablation: list[float]) -> dict[int, list[tuple[float, str]]]:
    """Iteration -> [(tau fraction, tau-state file name)] for the main tau and every ablation tau."""
    stops: dict[int, list[tuple[float, str]]] = {}
    for frac, name in [(tau_fraction, tau_state_name())] + [(f, tau_state_name(f)) for f in ablation]:
        stops.setdefault(make_schedule(n_train, batch_size, epochs, frac).tau, []).append((frac, name))
    return stops


def certify_init(model: torch.nn.Module, data: Any, out_dir: Path, rid: str, method: str = "auto",
                 batch_size: int = 1024, scratch: str | None = None) -> dict[str, Any]:
    """The expressivity certificate of the initial network (batch norm with its initial statistics)."""
    with timed(rid, f"certificate at init (n = {data.n_train})"):
        certificate = certify_model(model, data.x_train, "head", method, batch_size, scratch).as_dict()
    certificate.update(run_id=rid, stage="init", iteration=0)
    write_json(out_dir / "certificate_init.json", certificate)
    return certificate
