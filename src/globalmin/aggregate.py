"""Aggregation: per-run metrics and curves into one runs table, one curves table and the Table 1 analog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from globalmin.runinfo import read_json, write_text

ALGORITHM_LABELS = {"base": "base", "recipe": "A(base)"}
CERT_FIELDS = ("sigma_min", "sigma_max", "rank", "full_rank", "tolerance", "n", "m")


def collect_runs(metrics_paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every run's metrics.json and the curve.csv beside it: (one row per run, one row per curve point)."""
    runs, curves = [], []
    for path in map(Path, metrics_paths):
        m = read_json(path)
        row: dict[str, Any] = {
            "run_id": m["run_id"], "dataset": m["dataset"], "augment": m["augment"], "seed": m["seed"],
            "algorithm": m["algorithm"], "tau_fraction": m["tau_fraction"], "tau_ablation": m["tau_ablation"],
            "n_train": m["n_train"], "m_H": m["m_H"],
            "tau": m["schedule"]["tau"], "iterations": m["schedule"]["epochs"] * m["schedule"]["iters_per_epoch"],
            "tau_epoch": m["schedule"]["tau"] / m["schedule"]["iters_per_epoch"],
            **m["final"], "wall_seconds": m["wall_seconds"], "device": m["environment"].get("device"),
        }
        # A base run's folder also holds the certificate of its initial network (recipe rows have none).
        init = read_json(path.with_name("certificate_init.json")) if m["algorithm"] == "base" else {}
        for key in CERT_FIELDS:
            row[f"cert_{key}"] = m.get("certificate", {}).get(key)
            row[f"init_cert_{key}"] = init.get(key)
        runs.append(row)
        curve = pd.read_csv(path.with_name("curve.csv"))
        curve["dataset"], curve["augment"], curve["tau_epoch"] = m["dataset"], m["augment"], row["tau_epoch"]
        curve["tau_fraction"], curve["tau_ablation"] = m["tau_fraction"], m["tau_ablation"]
        curves.append(curve)
    if not runs:
        raise ValueError("no runs to aggregate: the experiment section lists no data sets, seeds or augmentation")
    order = ["dataset", "augment", "algorithm", "tau_fraction", "seed"]
    return (pd.DataFrame(runs).sort_values(order, ignore_index=True),
            pd.concat(curves, ignore_index=True).sort_values(order + ["iteration"], ignore_index=True))


def _mean_std(values: pd.Series) -> str:
    """'mean (std)' over seeds; the std is 'n/a' for a single seed."""
    std = f"{values.std(ddof=1):.2f}" if len(values) > 1 else "n/a"
    return f"{values.mean():.2f} ({std})"


def main_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the main experiment: base and A(base) at the configured tau (not the tau ablation)."""
    return frame[~frame.tau_ablation.astype(bool)]


def table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Kawaguchi & Sun's Table 1 layout: per data set and augmentation, test error (%) mean (std) over seeds."""
    rows = []
    for (dataset, augmented), group in main_runs(runs).groupby(["dataset", "augment"], sort=True):
        base, recipe = group[group.algorithm == "base"], group[group.algorithm == "recipe"]
        certified = int(recipe.cert_full_rank.astype(bool).sum())
        at_init = int(base.init_cert_full_rank.astype(bool).sum())
        rows.append({
            "Dataset": dataset,
            "# training points": int(group.n_train.iloc[0]),
            "Expressivity condition": (f"{'verified' if certified == len(recipe) else 'NOT verified'} at τ "
                                       f"({certified}/{len(recipe)} runs; min σ_min {recipe.cert_sigma_min.min():.2e}); "
                                       f"at init {at_init}/{len(base)} (min σ_min {base.init_cert_sigma_min.min():.2e})"),
            "Augmentation": "yes" if augmented else "no",
            "Seeds": len(base),
            "base test error (%)": _mean_std(base.test_error),
            "A(base) test error (%)": _mean_std(recipe.test_error),
        })
    return pd.DataFrame(rows)


def tau_ablation(runs: pd.DataFrame) -> pd.DataFrame:
    """A(base) test error and certificates per tau fraction, for the data sets that have a tau ablation."""
    ablated = runs[runs.tau_ablation.astype(bool)][["dataset", "augment"]].drop_duplicates()
    recipe = runs[runs.algorithm == "recipe"].merge(ablated, on=["dataset", "augment"])
    rows = []
    for (dataset, augmented, frac), group in recipe.groupby(["dataset", "augment", "tau_fraction"], sort=True):
        rows.append({"Dataset": dataset, "Augmentation": "yes" if augmented else "no", "τ / T": frac,
                     "Seeds": len(group), "A(base) test error (%)": _mean_std(group.test_error),
                     "rank n": f"{int(group.cert_full_rank.astype(bool).sum())}/{len(group)}",
                     "min σ_min": f"{group.cert_sigma_min.min():.2e}"})
    columns = ["Dataset", "Augmentation", "τ / T", "Seeds", "A(base) test error (%)", "rank n", "min σ_min"]
    return pd.DataFrame(rows, columns=columns)


def summary_metrics(runs: pd.DataFrame) -> dict[str, Any]:
    """Headline numbers per data set and augmentation, for `dvc metrics show` (nested: dataset/aug/key)."""
    out: dict[str, Any] = {}
    for (dataset, augmented), group in main_runs(runs).groupby(["dataset", "augment"], sort=True):
        base, recipe = group[group.algorithm == "base"], group[group.algorithm == "recipe"]
        out.setdefault(dataset, {})["aug" if augmented else "noaug"] = {
            "base_test_error": round(float(base.test_error.mean()), 4),
            "recipe_test_error": round(float(recipe.test_error.mean()), 4),
            "recipe_train_objective": float(recipe.train_objective.mean()),
            "runs_rank_n": int(recipe.cert_full_rank.astype(bool).sum()), "runs": int(len(recipe)),
            "min_sigma_min": float(recipe.cert_sigma_min.min())}
    return out


def mean_curves(curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per '<dataset>_<aug>': epoch against the seed-mean objective and test error of base and A(base)."""
    out = {}
    for (dataset, augmented), group in main_runs(curves).groupby(["dataset", "augment"], sort=True):
        wide = group.pivot_table(index="epoch", columns="algorithm", values=["train_objective", "test_error"])
        wide.columns = [f"{ALGORITHM_LABELS[alg].replace('(', '_').rstrip(')')}_{metric}" for metric, alg in wide.columns]
        out[f"{dataset}_{'aug' if augmented else 'noaug'}"] = wide.reset_index()
    return out


def write_tables(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write runs.csv, curves.csv and Table 1 as CSV, HTML and LaTeX; returns the paths written."""
    out_dir = Path(out_dir)
    table = table1(runs)
    ablation = tau_ablation(runs)
    texts = {
        "ablation.csv": ablation.to_csv(index=False),
        "ablation.html": ablation.to_html(index=False, classes="table", border=0),
        "runs.csv": runs.to_csv(index=False),
        "curves.csv": curves.to_csv(index=False),
        "table1.csv": table.to_csv(index=False),
        "table1.html": table.to_html(index=False, classes="table", border=0),
        "table1.tex": table.to_latex(index=False, escape=True),
    }
    return [write_text(out_dir / name, text) for name, text in texts.items()]


def write_dvc_views(runs: pd.DataFrame, curves: pd.DataFrame, metrics_path: str | Path,
                    plots_dir: str | Path) -> list[Path]:
    """The summary metrics JSON and one mean-curve CSV per data set and augmentation, for DVC."""
    import json

    written = [write_text(metrics_path, json.dumps(summary_metrics(runs), indent=2, sort_keys=True) + "\n")]
    for name, frame in mean_curves(curves).items():
        written.append(write_text(Path(plots_dir) / f"{name}.csv", frame.to_csv(index=False)))
    return written
