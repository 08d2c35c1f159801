"""The width sweep's figures: phase 2's unregularised infimum against m_H / n under each loss, certified widths
marked (sweep.png), and phase 2's training loss along the horizon past T, certified widths against uncertified
ones (sweep_horizon.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from globalmin.figures.style import finish, log_axis, panel_grid, save

FLOOR = 1e-12  # an infimum of 0 is drawn here on the log axis
LOSS_LABELS = {"cross_entropy": "cross-entropy", "squared": "squared loss"}


def empty(png: Path, text: str) -> list[Path]:
    """A figure that says why it has nothing to show."""
    fig, axes = panel_grid(1)
    axes[0].text(0.5, 0.5, text, ha="center", va="center", transform=axes[0].transAxes)
    axes[0].set_axis_off()
    return save(fig, png)


def read_table(path: str) -> pd.DataFrame:
    """A CSV table; an empty one (no sweep, no horizon) as an empty frame."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def sweep_frame(runs: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """The sweep's A(base) runs (their conditions are named in sweep.csv), with m_H / n and the infimum to draw."""
    frame = runs[(runs.algorithm == "recipe") & runs.condition.isin(sweep.condition) & ~runs.tau_ablation.astype(bool)]
    return frame.assign(ratio=frame.m_H / frame.n_train,
                        infimum_plot=np.maximum(frame.p2_infimum.fillna(0.0), FLOOR),
                        certified=frame.cert_full_rank.map({True: "rank n certified", False: "not certified"}),
                        loss_label=frame.loss.map(LOSS_LABELS))


def plot_infimum(frame: pd.DataFrame, png: Path) -> list[Path]:
    """Unregularised infimum against m_H / n, one panel per base, one colour per loss, filled where certified."""
    bases = sorted(frame.base.unique())
    fig, axes = panel_grid(len(bases), row_height=3.0, per_row=2)
    for ax, base in zip(axes, bases):
        part = frame[frame.base == base]
        sns.lineplot(data=part, x="ratio", y="infimum_plot", hue="loss_label", estimator="median", errorbar=None,
                     ax=ax, legend=False, palette="colorblind", hue_order=list(LOSS_LABELS.values()))
        sns.scatterplot(data=part, x="ratio", y="infimum_plot", hue="loss_label", style="certified",
                        style_order=["rank n certified", "not certified"], markers={"rank n certified": "o",
                                                                                     "not certified": "X"},
                        hue_order=list(LOSS_LABELS.values()), palette="colorblind", s=60, ax=ax)
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set(title=f"base = {base}", xlabel="m_H / n", ylabel=f"infimum without weight decay\n(0 drawn at {FLOOR:g})")
    return finish(fig, axes, png, None, ncol=4)


def plot_horizon(frame: pd.DataFrame, horizon: pd.DataFrame, png: Path) -> list[Path]:
    """Phase 2's unregularised training loss along the horizon, per loss, one line per run, by certification."""
    runs = frame.set_index("run_id")
    part = horizon[horizon.run_id.isin(runs.index)].assign(
        certified=lambda h: runs.loc[h.run_id, "certified"].to_numpy(),
        ratio=lambda h: (runs.loc[h.run_id, "m_H"] / runs.loc[h.run_id, "n_train"]).map("{:.3g}".format).to_numpy(),
        loss_label=lambda h: runs.loc[h.run_id, "loss_label"].to_numpy(),
        loss_plot=lambda h: np.maximum(h.loss64, FLOOR))
    if part.empty:
        return empty(png, "no sweep run was continued past T\n(recipe.horizon.epochs is 0)")
    losses = [label for label in LOSS_LABELS.values() if label in set(part.loss_label)]
    fig, axes = panel_grid(len(losses), row_height=3.0, per_row=2)
    for ax, label in zip(axes, losses):
        sns.lineplot(data=part[part.loss_label == label], x="horizon_epoch", y="loss_plot", hue="ratio",
                     style="certified", style_order=["rank n certified", "not certified"], units="run_id",
                     estimator=None, palette="viridis", ax=ax)
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set(title=label, xlabel="epochs past T", ylabel="training loss\n(no weight decay)" if ax is axes[0] else "")
    return finish(fig, axes, png, "m_H / n and certificate", ncol=4)


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[Path]:
    """sweep.png and sweep_horizon.png (+ PDF) from inputs runs=, sweep= and horizon= into out_dir."""
    tables = {name: read_table(path) for name, path in (item.split("=", 1) for item in inputs["inputs"])}
    out = Path(outputs["out_dir"])
    if tables["sweep"].empty:
        return (empty(out / "sweep.png", "no width sweep in this run\n(width_sweep.ratios is empty)")
                + empty(out / "sweep_horizon.png", "no width sweep in this run"))
    frame = sweep_frame(tables["runs"], tables["sweep"])
    return plot_infimum(frame, out / "sweep.png") + plot_horizon(frame, tables["horizon"], out / "sweep_horizon.png")
