"""Every run of the experiment as one table row, read from the files the training stages wrote, and the selections
the tables and the Recipe's claims are made of (`aggregate.py`, `recipe_claims.py` and the figures read it).

Each file is checked against where it lies: a metrics.json whose run id is not its folder's (a file copied from
another run), or two files of one run, are refused with a line naming the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from globalmin.runinfo import UserError, read_json

CERT_FIELDS = ("sigma_min", "sigma_max", "rank", "full_rank", "tolerance", "n", "m_H", "rank_float32",
               "full_rank_float32", "sigma_min_lower_bound")
PHASE2_FIELDS = ("computed", "loss", "weight_decay", "optimum_objective", "optimum_error_bound", "optimum_converged",
                 "optimum_train_error", "optimum_loss", "optimum_test_error", "gap_at_tau", "gap_final", "gap_ratio")
HORIZON_FIELDS = ("epochs", "iterations", "lr", "gap_at_horizon", "gap_ratio", "rate_per_epoch", "loss_at_horizon",
                  "train_error_at_horizon")
RUNS_ROOT = "runs"  # run folders lie below <...>/runs/<run id>/


def expected_id(path: Path) -> str | None:
    """The run id a metrics.json's folder names (<dataset>/<condition>/<aug>/seed<k>/<algorithm>), if it lies in a
    run folder of the workflow's layout."""
    parts = path.parent.parts
    if RUNS_ROOT not in parts or len(parts) - parts.index(RUNS_ROOT) - 1 != 5:
        return None
    return "/".join(parts[parts.index(RUNS_ROOT) + 1:])


def run_row(m: dict[str, Any], path: Path) -> dict[str, Any]:
    """One runs-table row from a run's metrics (and, for a base run, its init certificate beside it)."""
    condition = m["condition"]  # base's resolved condition (name, labels, label_seed, loss)
    schedule = m["schedule"]
    train = m["config"]["train"]
    row: dict[str, Any] = {
        "run_id": m["run_id"], "dataset": m["dataset"], "condition": condition["name"],
        "labels": condition["labels"], "loss": condition["loss"],
        "base": (train.get("optimizer") or {"name": "sgd"})["name"], "lr": train["lr"],
        "augment": m["augment"], "seed": m["seed"], "data_seed": m.get("data_seed"),
        "algorithm": m["algorithm"], "tau_fraction": m["tau_fraction"], "tau_ablation": m["tau_ablation"],
        "n_train": m["n_train"], "m_H": m["m_H"], "tau": schedule["tau"],
        "iterations": schedule["epochs"] * schedule["iters_per_epoch"],
        "tau_epoch": schedule["tau"] / schedule["iters_per_epoch"], **m["final"],
        "test_predictions_changed": m.get("test_predictions_changed"), "n_test": m.get("n_test"),
        "device": m["environment"].get("device")}
    init = read_json(path.with_name("certificate_init.json")) if m["algorithm"] == "base" else {}
    certificate = m.get("certificate", {})
    for key in CERT_FIELDS:
        row[f"cert_{key}"] = certificate.get(key)
        row[f"init_cert_{key}"] = init.get(key)
    unperturbed = certificate.get("unperturbed", {})
    row.update(cert_unperturbed_sigma_min=unperturbed.get("sigma_min"),
               cert_unperturbed_full_rank=unperturbed.get("full_rank"))
    problem = m.get("phase2_problem", {})
    for key in PHASE2_FIELDS:
        row[f"p2_{key}"] = problem.get(key)
    unreg = problem.get("unregularised", {})
    row.update(p2_infimum_kind=unreg.get("kind"), p2_infimum=unreg.get("infimum"),
               p2_infimum_train_error=unreg.get("train_error"), p2_why=problem.get("why"))
    for key in HORIZON_FIELDS:
        row[f"h_{key}"] = problem.get("horizon", {}).get(key)
    return row


def collect_runs(metrics_paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read every run's metrics.json and the curve.csv (and horizon.csv) beside it: (one row per run, one row per
    curve point, one row per horizon point)."""
    runs, curves, horizons, seen = [], [], [], {}
    for path in map(Path, metrics_paths):
        m = read_json(path)
        expected = expected_id(path)
        if expected is not None and m["run_id"] != expected:
            raise UserError(f"{path} holds run {m['run_id']}, not {expected}, the run of its folder: it was copied "
                            f"from another run; delete it and rerun that run (`snakemake {path}`)")
        if m["run_id"] in seen:
            raise UserError(f"run {m['run_id']} appears twice: {seen[m['run_id']]} and {path}; keep one")
        seen[m["run_id"]] = path
        row = run_row(m, path)
        runs.append(row)
        keys = ("dataset", "condition", "labels", "augment", "tau_epoch", "tau_fraction", "tau_ablation", "base",
                "loss", "m_H", "n_train")
        curve = pd.read_csv(path.with_name("curve.csv"))
        curves.append(curve.assign(**{k: row[k] for k in keys}))
        if path.with_name("horizon.csv").exists():
            horizon = pd.read_csv(path.with_name("horizon.csv"))
            if len(horizon):
                horizons.append(horizon.assign(run_id=row["run_id"], seed=row["seed"], **{k: row[k] for k in keys},
                                               certified=bool(row["cert_full_rank"])))
    if not runs:
        raise ValueError("no runs to aggregate: the experiment section lists no data sets, seeds or augmentation")
    order = ["dataset", "condition", "augment", "algorithm", "tau_fraction", "seed"]
    runs_frame = pd.DataFrame(runs).sort_values(order, ignore_index=True)
    curves_frame = pd.concat(curves, ignore_index=True).sort_values(order + ["iteration"], ignore_index=True)
    horizon_frame = (pd.concat(horizons, ignore_index=True).sort_values(["run_id", "epoch"], ignore_index=True)
                     if horizons else pd.DataFrame(columns=["run_id", "epoch"]))
    return add_base_at_tau(runs_frame, curves_frame), curves_frame, horizon_frame


def add_base_at_tau(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """For every A(base) run, the training error of its base run at tau (the base curve's row there)."""
    base = curves[curves.algorithm == "base"][["dataset", "condition", "augment", "seed", "iteration", "train_error"]]
    merged = runs.merge(base.rename(columns={"iteration": "tau", "train_error": "base_train_error_at_tau"}),
                        on=["dataset", "condition", "augment", "seed", "tau"], how="left")
    merged.loc[merged.algorithm != "recipe", "base_train_error_at_tau"] = None
    return merged


def table1_runs(frame: pd.DataFrame, ablation: bool = False) -> pd.DataFrame:
    """Table 1's runs: the data set's labels, cross-entropy, m_H = n (no width of the condition's own); at the main
    tau only unless `ablation`."""
    rows = (frame.labels == "dataset") & (frame.loss == "cross_entropy") & (frame.m_H == frame.n_train)
    return frame[rows if ablation else rows & ~frame.tau_ablation.astype(bool)]


def sweep_runs(runs: pd.DataFrame, points: list[dict[str, Any]]) -> pd.DataFrame:
    """The A(base) runs of the width sweep's points, with each point's base condition, loss and ratio, and m_H / n."""
    frames = []
    for p in points:
        part = runs[(runs.algorithm == "recipe") & (runs.condition == p["condition"]) & ~runs.tau_ablation.astype(bool)
                    & runs.seed.isin(p["seeds"])]
        frames.append(part.assign(sweep_base=p["base"], sweep_loss=p["loss"], ratio=p["ratio"]))
    out = pd.concat(frames, ignore_index=True) if frames else runs.iloc[0:0].assign(sweep_base=[], sweep_loss=[],
                                                                                   ratio=[])
    return out.assign(width_ratio=out.m_H / out.n_train)
