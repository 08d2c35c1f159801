"""Stage `aggregate`: every run's metrics and curves into tables, the Table 1 analog, the conditions table, the
DVC views, and the Recipe's claims judged from them (`recipe_claims.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from globalmin.runinfo import read_json, write_text

ALGORITHM_LABELS = {"base": "base", "recipe": "A(base)"}
CERT_FIELDS = ("sigma_min", "sigma_max", "rank", "full_rank", "tolerance", "n", "m", "rank_float32",
               "full_rank_float32")
PHASE2_FIELDS = ("computed", "optimum_objective", "optimum_error_bound", "optimum_converged", "optimum_train_error",
                 "optimum_test_error", "gap_at_tau", "gap_final", "gap_ratio")


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Tables into outputs['out_dir'], DVC views into outputs['summary'] and outputs['plots_dir'], and the
    Recipe's claims fragment (cfg: the claims section) into out_dir/claims.json."""
    from globalmin import recipe_claims
    from globalmin.claims import write_fragment

    runs, curves = collect_runs(inputs["metrics"])
    out = Path(outputs["out_dir"])
    write_tables(runs, curves, out)
    write_dvc_views(runs, curves, outputs["summary"], outputs["plots_dir"])
    evidence = [str(out / name) for name in ("runs.csv", "curves.csv")]
    write_fragment(out / "claims.json", "recipe", recipe_claims.judge(runs, cfg, evidence))


def run_row(m: dict[str, Any], path: Path) -> dict[str, Any]:
    """One runs-table row from a run's metrics (and, for a base run, its init certificate beside it)."""
    condition = m.get("condition", {})
    schedule = m["schedule"]
    row: dict[str, Any] = {
        "run_id": m["run_id"], "dataset": m["dataset"], "condition": condition.get("name", "standard"),
        "labels": condition.get("labels", "true"), "augment": m["augment"], "seed": m["seed"],
        "algorithm": m["algorithm"], "tau_fraction": m["tau_fraction"], "tau_ablation": m["tau_ablation"],
        "n_train": m["n_train"], "m_H": m["m_H"], "tau": schedule["tau"],
        "iterations": schedule["epochs"] * schedule["iters_per_epoch"],
        "tau_epoch": schedule["tau"] / schedule["iters_per_epoch"], **m["final"],
        "device": m["environment"].get("device")}
    init = read_json(path.with_name("certificate_init.json")) if m["algorithm"] == "base" else {}
    for key in CERT_FIELDS:
        row[f"cert_{key}"] = m.get("certificate", {}).get(key)
        row[f"init_cert_{key}"] = init.get(key)
    problem = m.get("phase2_problem", {})
    for key in PHASE2_FIELDS:
        row[f"p2_{key}"] = problem.get(key)
    unreg = problem.get("unregularised", {})
    row.update(p2_infimum_kind=unreg.get("kind"), p2_infimum=unreg.get("infimum"),
               p2_infimum_train_error=unreg.get("train_error"), p2_why=problem.get("why"))
    return row


def collect_runs(metrics_paths: list[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every run's metrics.json and the curve.csv beside it: (one row per run, one row per curve point)."""
    runs, curves = [], []
    for path in map(Path, metrics_paths):
        m = read_json(path)
        row = run_row(m, path)
        runs.append(row)
        curve = pd.read_csv(path.with_name("curve.csv"))
        for key in ("dataset", "condition", "augment", "tau_epoch", "tau_fraction", "tau_ablation"):
            curve[key] = row[key]
        curves.append(curve)
    if not runs:
        raise ValueError("no runs to aggregate: the experiment section lists no data sets, seeds or augmentation")
    order = ["dataset", "condition", "augment", "algorithm", "tau_fraction", "seed"]
    runs_frame = pd.DataFrame(runs).sort_values(order, ignore_index=True)
    curves_frame = pd.concat(curves, ignore_index=True).sort_values(order + ["iteration"], ignore_index=True)
    return add_base_at_tau(runs_frame, curves_frame), curves_frame


def add_base_at_tau(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """For every A(base) run, the training error of its base run at tau (the base curve's row there)."""
    base = curves[curves.algorithm == "base"][["dataset", "condition", "augment", "seed", "iteration", "train_error"]]
    merged = runs.merge(base.rename(columns={"iteration": "tau", "train_error": "base_train_error_at_tau"}),
                        on=["dataset", "condition", "augment", "seed", "tau"], how="left")
    merged.loc[merged.algorithm != "recipe", "base_train_error_at_tau"] = None
    return merged


def mean_std(values: pd.Series, digits: int = 2) -> str:
    """'mean (std)' over seeds; the std is 'n/a' for a single seed."""
    std = f"{values.std(ddof=1):.{digits}f}" if len(values) > 1 else "n/a"
    return f"{values.mean():.{digits}f} ({std})"


def main_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of Table 1: the standard condition, base and A(base) at the configured tau (not the ablation)."""
    return frame[~frame.tau_ablation.astype(bool) & (frame.condition == "standard")]


def certificate_text(recipe: pd.DataFrame, base: pd.DataFrame) -> str:
    """The 'Expressivity condition' cell: certificates at tau (float64 and float32) and at init."""
    certified = int(recipe.cert_full_rank.astype(bool).sum())
    text = (f"{'verified' if certified == len(recipe) else 'NOT verified'} at τ ({certified}/{len(recipe)} runs; "
            f"min σ_min {recipe.cert_sigma_min.min():.2e}")
    if recipe.cert_rank_float32.notna().any():
        text += f"; float32 rank {int(recipe.cert_rank_float32.min())}–{int(recipe.cert_rank_float32.max())}"
    text += ")"
    if len(base) and base.init_cert_full_rank.notna().any():
        at_init = int(base.init_cert_full_rank.astype(bool).sum())
        text += f"; at init {at_init}/{len(base)} (min σ_min {base.init_cert_sigma_min.min():.2e})"
    return text


def table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Kawaguchi & Sun's Table 1 layout: per data set and augmentation, test error (%) mean (std) over seeds."""
    rows = []
    for (dataset, augmented), group in main_runs(runs).groupby(["dataset", "augment"], sort=True):
        base, recipe = group[group.algorithm == "base"], group[group.algorithm == "recipe"]
        rows.append({"Dataset": dataset, "# training points": int(group.n_train.iloc[0]),
                     "Expressivity condition": certificate_text(recipe, base),
                     "Augmentation": "yes" if augmented else "no", "Seeds": len(base),
                     "base test error (%)": mean_std(base.test_error),
                     "A(base) test error (%)": mean_std(recipe.test_error)})
    return pd.DataFrame(rows)


def infimum_text(group: pd.DataFrame) -> str:
    """What phase 2's unregularised problem admits, over a group's runs: '0 (3/3)', '0.52 (positive, 3/3)', ..."""
    kinds = group.p2_infimum_kind.dropna()
    if kinds.empty:
        return "–"
    parts = []
    for kind, part in group.groupby("p2_infimum_kind", sort=True):
        if kind == "positive":
            parts.append(f"{part.p2_infimum.median():.3g} > 0 ({len(part)}/{len(group)})")
        else:
            parts.append(f"{'0' if kind == 'zero' else 'undecided'} ({len(part)}/{len(group)})")
    return "; ".join(parts)


def conditions_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per data set, condition, augmentation and tau: where the guarantee can decide the outcome (docs/science.md).

    Errors in %; gaps are L(W_t) - L* of phase 2's regularised convex problem (medians over seeds); the
    infimum is that of the unregularised problem, whose global value is 0."""
    recipe = runs[runs.algorithm == "recipe"]
    base = runs[runs.algorithm == "base"].set_index(["dataset", "condition", "augment", "seed"])
    rows = []
    for (dataset, condition, augmented, frac), group in recipe.groupby(
            ["dataset", "condition", "augment", "tau_fraction"], sort=True):
        keys = list(zip(group.dataset, group.condition, group.augment, group.seed))
        bases = base.loc[keys]
        gap = group.p2_gap_final.notna()
        rows.append({
            "Dataset": dataset, "Condition": condition, "labels": group.labels.iloc[0],
            "n": int(group.n_train.iloc[0]), "m_H": int(group.m_H.iloc[0]),
            "Augmentation": "yes" if augmented else "no", "τ / T": frac, "Seeds": len(group),
            "rank n at τ": f"{int(group.cert_full_rank.astype(bool).sum())}/{len(group)}",
            "base train err at τ": mean_std(group.base_train_error_at_tau),
            "base train err at T": mean_std(bases.train_error),
            "A(base) train err at T": mean_std(group.train_error),
            "gap at τ → T (median)": (f"{group.p2_gap_at_tau[gap].median():.3g} → "
                                      f"{group.p2_gap_final[gap].median():.3g}" if gap.any() else "–"),
            "optimum train err": mean_std(group.p2_optimum_train_error) if gap.any() else "–",
            "infimum (no weight decay)": infimum_text(group),
            "base test err": mean_std(bases.test_error), "A(base) test err": mean_std(group.test_error)})
    return pd.DataFrame(rows)


def summary_metrics(runs: pd.DataFrame) -> dict[str, Any]:
    """Headline numbers per data set and augmentation, for `dvc metrics show` (nested: dataset/aug/key).

    The certificate's margin is given as log10(σ_min / tolerance): readable at DVC's default precision, where
    σ_min itself (about 1e-5) would round to 0."""
    import math

    out: dict[str, Any] = {}
    for (dataset, augmented), group in main_runs(runs).groupby(["dataset", "augment"], sort=True):
        base, recipe = group[group.algorithm == "base"], group[group.algorithm == "recipe"]
        margin = (recipe.cert_sigma_min / recipe.cert_tolerance).min()
        out.setdefault(dataset, {})["aug" if augmented else "noaug"] = {
            "base_test_error": round(float(base.test_error.mean()), 4),
            "recipe_test_error": round(float(recipe.test_error.mean()), 4),
            "recipe_train_objective": round(float(recipe.train_objective.mean()), 6),
            "runs_rank_n": int(recipe.cert_full_rank.astype(bool).sum()), "runs": int(len(recipe)),
            "log10_min_sigma_min_over_tolerance": round(math.log10(margin), 3) if margin > 0 else None}
    return out


def mean_curves(curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per '<dataset>_<aug>': epoch against the seed-mean objective and test error of base and A(base)."""
    out = {}
    for (dataset, augmented), group in main_runs(curves).groupby(["dataset", "augment"], sort=True):
        wide = group.pivot_table(index="epoch", columns="algorithm", values=["train_objective", "test_error"])
        wide.columns = [f"{ALGORITHM_LABELS[alg].replace('(', '_').rstrip(')')}_{metric}"
                        for metric, alg in wide.columns]
        out[f"{dataset}_{'aug' if augmented else 'noaug'}"] = wide.reset_index()
    return out


def write_tables(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write runs.csv, curves.csv, Table 1 (CSV, HTML, LaTeX) and the conditions table (CSV, HTML)."""
    out_dir = Path(out_dir)
    table, conditions = table1(runs), conditions_table(runs)
    texts = {
        "runs.csv": runs.to_csv(index=False),
        "curves.csv": curves.to_csv(index=False),
        "table1.csv": table.to_csv(index=False),
        "table1.html": table.to_html(index=False, classes="table", border=0),
        "table1.tex": table.to_latex(index=False, escape=True),
        "conditions.csv": conditions.to_csv(index=False),
        "conditions.html": conditions.to_html(index=False, classes="table", border=0, na_rep="–"),
    }
    return [write_text(out_dir / name, text) for name, text in texts.items()]


def write_dvc_views(runs: pd.DataFrame, curves: pd.DataFrame, metrics_path: str | Path,
                    plots_dir: str | Path) -> list[Path]:
    """The summary metrics JSON and one mean-curve CSV per data set and augmentation, for DVC."""
    written = [write_text(metrics_path, json.dumps(summary_metrics(runs), indent=2, sort_keys=True) + "\n")]
    for name, frame in mean_curves(curves).items():
        written.append(write_text(Path(plots_dir) / f"{name}.csv", frame.to_csv(index=False)))
    return written
