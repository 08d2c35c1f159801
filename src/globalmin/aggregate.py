"""Stage `aggregate`: every run's metrics and curves into tables (the Table 1 analog, the conditions, the width
sweep), the DVC views, and the Recipe's claims judged from them (`recipe_claims.py`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from globalmin import recipe_claims
from globalmin.claims import write_fragment
from globalmin.outputs import TABLES
from globalmin.runinfo import write_text
from globalmin.runs_table import collect_runs, sweep_runs, table1_runs

ALGORITHM_LABELS = {"base": "base", "recipe": "A(base)"}


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Tables into outputs['out_dir'], DVC views into outputs['summary'] and outputs['plots_dir'], and the
    Recipe's claims fragment into out_dir/claims.json. cfg: the claims section and the width sweep's points."""
    runs, curves, horizons = collect_runs(inputs["metrics"])
    out = Path(outputs["out_dir"])
    points = cfg.get("sweep_points", [])
    write_tables(runs, curves, horizons, points, out)
    write_dvc_views(runs, curves, outputs["summary"], outputs["plots_dir"])
    evidence = [str(out / name) for name in ("runs.csv", "curves.csv", "horizon.csv", "sweep.csv")]
    write_fragment(out / "claims.json", "recipe", recipe_claims.judge(runs, cfg, evidence, sweep_runs(runs, points)))


def mean_std(values: pd.Series, digits: int = 2) -> str:
    """'mean (std)' over seeds; the std is 'n/a' for a single seed."""
    values = values.dropna()
    if values.empty:
        return "–"
    std = f"{values.std(ddof=1):.{digits}f}" if len(values) > 1 else "n/a"
    return f"{values.mean():.{digits}f} ({std})"


def certificate_text(recipe: pd.DataFrame, base: pd.DataFrame) -> str:
    """The 'Expressivity condition' cell: certificates at tau (float64 and float32, perturbed and not) and at init."""
    certified = int(recipe.cert_full_rank.astype(bool).sum())
    text = (f"{'verified' if certified == len(recipe) else 'NOT verified'} at τ ({certified}/{len(recipe)} runs; "
            f"min σ_min {recipe.cert_sigma_min.min():.2e}")
    if recipe.cert_unperturbed_sigma_min.notna().any():
        unperturbed = int(recipe.cert_unperturbed_full_rank.astype(bool).sum())
        text += f"; unperturbed {unperturbed}/{len(recipe)}, min σ_min {recipe.cert_unperturbed_sigma_min.min():.2e}"
    if recipe.cert_rank_float32.notna().any():
        text += f"; float32 rank {int(recipe.cert_rank_float32.min())}–{int(recipe.cert_rank_float32.max())}"
    text += ")"
    if len(base) and base.init_cert_full_rank.notna().any():
        at_init = int(base.init_cert_full_rank.astype(bool).sum())
        text += f"; at init {at_init}/{len(base)} (min σ_min {base.init_cert_sigma_min.min():.2e})"
    return text


def table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Kawaguchi & Sun's Table 1 layout: per data set, base and augmentation, test error (%) mean (std) over seeds."""
    rows = []
    for (dataset, base_name, augmented), group in table1_runs(runs).groupby(["dataset", "base", "augment"],
                                                                            sort=True):
        base, recipe = group[group.algorithm == "base"], group[group.algorithm == "recipe"]
        rows.append({"Dataset": dataset, "base": base_name, "# training points": int(group.n_train.iloc[0]),
                     "Expressivity condition": certificate_text(recipe, base),
                     "Augmentation": "yes" if augmented else "no", "Seeds": len(base),
                     "base test error (%)": mean_std(base.test_error),
                     "A(base) test error (%)": mean_std(recipe.test_error)})
    return pd.DataFrame(rows)


def infimum_text(group: pd.DataFrame) -> str:
    """What phase 2's unregularised problem admits, over a group's runs: '0 (3/3)', '0.52 > 0 (3/3)', ..."""
    if group.p2_infimum_kind.dropna().empty:
        return "–"
    parts = []
    for kind, part in group.groupby("p2_infimum_kind", sort=True):
        if kind == "positive":
            parts.append(f"{part.p2_infimum.median():.3g} > 0 ({len(part)}/{len(group)})")
        else:
            parts.append(f"{'0' if kind == 'zero' else 'undecided'} ({len(part)}/{len(group)})")
    return "; ".join(parts)


def gap_text(group: pd.DataFrame) -> str:
    """Median gap to the optimum at tau, at T (base's budget) and at the horizon's end."""
    solved = group.p2_gap_final.notna()
    if not solved.any():
        return "–"
    text = f"{group.p2_gap_at_tau[solved].median():.3g} → {group.p2_gap_final[solved].median():.3g}"
    if group.h_gap_at_horizon.notna().any():
        text += f" → {group.h_gap_at_horizon.median():.3g}"
    return text


def conditions_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per data set, condition, augmentation and tau: what phase 2 reaches from there (docs/science.md).

    Errors in %; gaps are L(W_t) - L* of phase 2's regularised convex problem (medians over seeds) at tau, at T and
    at the end of the horizon; the infimum is that of the unregularised problem, whose global value is 0."""
    recipe = runs[runs.algorithm == "recipe"]
    base = runs[runs.algorithm == "base"].set_index(["dataset", "condition", "augment", "seed"])
    rows = []
    for (dataset, condition, augmented, frac), group in recipe.groupby(
            ["dataset", "condition", "augment", "tau_fraction"], sort=True):
        bases = base.loc[list(zip(group.dataset, group.condition, group.augment, group.seed))]
        rows.append({
            "Dataset": dataset, "Condition": condition, "base": group.base.iloc[0], "loss": group.loss.iloc[0],
            "labels": group.labels.iloc[0], "n": int(group.n_train.iloc[0]), "m_H": int(group.m_H.iloc[0]),
            "Aug.": "yes" if augmented else "no", "τ / T": frac, "Seeds": len(group),
            "rank n at τ": f"{int(group.cert_full_rank.astype(bool).sum())}/{len(group)}",
            "base train err at τ / T": f"{mean_std(group.base_train_error_at_tau)} / {mean_std(bases.train_error)}",
            "A(base) train err at T": mean_std(group.train_error),
            "gap τ → T → horizon (median)": gap_text(group),
            "optimum train err": mean_std(group.p2_optimum_train_error),
            "infimum (no weight decay)": infimum_text(group),
            "test err base / A(base)": f"{mean_std(bases.test_error)} / {mean_std(group.test_error)}",
            "test predictions changed": mean_std(group.test_predictions_changed.astype(float), 1)})
    return pd.DataFrame(rows)


def sweep_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """The width sweep: per base, loss and m_H / n, the certificate at tau, the exact unregularised infimum, the
    phase-2 optimum's training error and phase 2's loss at the horizon's end (over the sweep's seeds)."""
    rows = []
    for (base, loss, ratio), group in sweep.groupby(["sweep_base", "sweep_loss", "width_ratio"], sort=True):
        rows.append({"base": group.base.iloc[0], "loss": loss, "m_H / n": f"{ratio:.3g}",
                     "m_H": int(group.m_H.iloc[0]), "n": int(group.n_train.iloc[0]), "Seeds": len(group),
                     "certified rank n": f"{int(group.cert_full_rank.astype(bool).sum())}/{len(group)}",
                     "σ_min at τ": f"{group.cert_sigma_min.min():.2e}",
                     "infimum (no weight decay)": infimum_text(group),
                     "optimum train err (%)": mean_std(group.p2_optimum_train_error),
                     "loss at τ → horizon": (f"{group.h_loss_at_horizon.median():.3g}"
                                             if group.h_loss_at_horizon.notna().any() else "–"),
                     "condition": group.condition.iloc[0]})
    return pd.DataFrame(rows)


def summary_metrics(runs: pd.DataFrame) -> dict[str, Any]:
    """Headline numbers per data set, base and augmentation, for `dvc metrics show` (nested: dataset/base/aug/key).

    The certificate's margin is given as log10(σ_min / tolerance): readable at DVC's default precision, where
    σ_min itself (about 1e-5) would round to 0."""
    out: dict[str, Any] = {}
    for (dataset, base_name, augmented), group in table1_runs(runs).groupby(["dataset", "base", "augment"],
                                                                            sort=True):
        base, recipe = group[group.algorithm == "base"], group[group.algorithm == "recipe"]
        margin = (recipe.cert_sigma_min / recipe.cert_tolerance).min()
        out.setdefault(dataset, {}).setdefault(base_name, {})["aug" if augmented else "noaug"] = {
            "base_test_error": round(float(base.test_error.mean()), 4),
            "recipe_test_error": round(float(recipe.test_error.mean()), 4),
            "recipe_train_objective": round(float(recipe.train_objective.mean()), 6),
            "runs_rank_n": int(recipe.cert_full_rank.astype(bool).sum()), "runs": int(len(recipe)),
            "log10_min_sigma_min_over_tolerance": round(math.log10(margin), 3) if margin > 0 else None}
    return out


def mean_curves(curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per '<dataset>_<base>_<aug>': epoch against the seed-mean objective and test error of base and A(base)."""
    out = {}
    for (dataset, base_name, augmented), group in table1_runs(curves).groupby(["dataset", "base", "augment"],
                                                                              sort=True):
        wide = group.pivot_table(index="epoch", columns="algorithm", values=["train_objective", "test_error"])
        wide.columns = [f"{ALGORITHM_LABELS[alg].replace('(', '_').rstrip(')')}_{metric}"
                        for metric, alg in wide.columns]
        out[f"{dataset}_{base_name}_{'aug' if augmented else 'noaug'}"] = wide.reset_index()
    return out


def write_tables(runs: pd.DataFrame, curves: pd.DataFrame, horizons: pd.DataFrame, points: list[dict[str, Any]],
                 out_dir: str | Path) -> list[Path]:
    """Write runs.csv, curves.csv, horizon.csv, Table 1 (CSV, HTML, LaTeX), the conditions table and the sweep
    table (CSV, HTML)."""
    out_dir = Path(out_dir)
    table, conditions, sweep = table1(runs), conditions_table(runs), sweep_table(sweep_runs(runs, points))
    html = {"index": False, "classes": "table", "border": 0, "na_rep": "–"}
    texts = {
        "runs.csv": runs.to_csv(index=False), "curves.csv": curves.to_csv(index=False),
        "horizon.csv": horizons.to_csv(index=False),
        "table1.csv": table.to_csv(index=False), "table1.html": table.to_html(**html),
        "table1.tex": table.to_latex(index=False, escape=True),
        "conditions.csv": conditions.to_csv(index=False), "conditions.html": conditions.to_html(**html),
        "sweep.csv": sweep.to_csv(index=False), "sweep.html": sweep.to_html(**html),
    }
    assert set(texts) == set(TABLES)
    return [write_text(out_dir / name, text) for name, text in texts.items()]


def write_dvc_views(runs: pd.DataFrame, curves: pd.DataFrame, metrics_path: str | Path,
                    plots_dir: str | Path) -> list[Path]:
    """The summary metrics JSON and one mean-curve CSV per data set, base and augmentation, for DVC."""
    written = [write_text(metrics_path, json.dumps(summary_metrics(runs), indent=2, sort_keys=True) + "\n")]
    for name, frame in mean_curves(curves).items():
        written.append(write_text(Path(plots_dir) / f"{name}.csv", frame.to_csv(index=False)))
    return written
