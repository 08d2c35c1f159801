"""Figures of the local-minimum study: certified loss against width per depth with its baselines, and the gap
to the projection bound against the gradient (one panel per data kind and activation in each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from globalmin.figures.style import finish, log_axis, panel_grid, read_inputs, save


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[Path]:
    """local_minima.png and local_minima_gap.png (+ PDF) from inputs runs= (the study's runs.csv) into out_dir."""
    runs = read_inputs(inputs["inputs"])["runs"]
    frame = runs.assign(certified=runs.certified.astype(bool), collapsed=runs.collapsed.astype(bool),
                        depth=runs.depth.astype(str),
                        # log axes cannot show 0: interpolating runs (L ~ 1e-20) are drawn at 1e-10 of ½‖y‖²
                        loss_plot=np.maximum(runs.loss, 1e-10 * runs.zero_loss))
    out = Path(outputs["out_dir"])
    return plot_losses(frame, out / "local_minima.png") + plot_gaps(frame, out / "local_minima_gap.png")


def panels(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(data kind, activation) of every panel."""
    return sorted(frame.groupby(["data", "activation"]).groups)


def plot_losses(frame: pd.DataFrame, png: Path) -> list[Path]:
    """Median certified loss against width per depth, with OLS, random features, uncertified and dead runs."""
    keys = panels(frame)
    fig, axes = panel_grid(len(keys), row_height=3.0, per_row=2)
    for i, (ax, (kind, activation)) in enumerate(zip(axes, keys)):
        part = frame[(frame.data == kind) & (frame.activation == activation)]
        good = part[part.certified & ~part.collapsed]
        if len(good):
            sns.lineplot(data=good, x="width", y="loss_plot", hue="depth", marker="o", estimator="median",
                         errorbar=None, palette="colorblind", hue_order=sorted(frame.depth.unique()), ax=ax)
        loose = part[~part.certified & ~part.collapsed]
        ax.scatter(loose.width, loose.loss_plot, facecolors="none", edgecolors="grey", s=22,
                   label="not certified (‖∇L‖ > tol)")
        dead = part[part.collapsed]
        ax.scatter(dead.width, dead.loss_plot, marker="x", color="red", s=40, label="collapsed (dead net)")
        ax.axhline(float(part.ols_loss.iloc[0]), color="black", linestyle="--", linewidth=1, label="OLS on [X, 1]")
        rf = part.groupby("width").rf_loss.first()
        ax.plot(rf.index, rf.to_numpy(), color="grey", linestyle=":", marker="s", markersize=3,
                label="random-feature LS (same width)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(part.width.unique()), [str(w) for w in sorted(part.width.unique())])
        log_axis(ax)
        ax.set(title=f"{kind}, {activation}", xlabel="hidden width", ylabel="final loss L (log)" if i % 2 == 0 else "")
    handles = {}
    for ax in axes:  # one legend for all panels: every label once
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
        if ax.get_legend():
            ax.get_legend().remove()
    fig.legend(handles.values(), [f"depth {k}" if k.isdigit() else k for k in handles],
               loc="outside lower center", ncol=3, frameon=False,
               title="lines: median certified loss per depth (a loss of 0 is drawn at 1e-10 ½‖y‖²)")
    return save(fig, png)


def plot_gaps(frame: pd.DataFrame, png: Path) -> list[Path]:
    """L − LB against ‖∇L‖ after the first-order phase and after polishing (both log)."""
    keys = panels(frame)
    fig, axes = panel_grid(len(keys), row_height=2.8, per_row=2)
    for i, (ax, (kind, activation)) in enumerate(zip(axes, keys)):
        part = frame[(frame.data == kind) & (frame.activation == activation)]
        for prefix, label, filled in (("first_", "after the first-order phase", False), ("", "after polishing", True)):
            gap = np.maximum(part[f"{prefix}gap"].abs(), 1e-18)
            ax.scatter(part[f"{prefix}grad_norm"].clip(lower=1e-16), gap, s=16, edgecolors="C0", label=label,
                       facecolors="C0" if filled else "none")
        log_axis(ax, "x")
        log_axis(ax)
        ax.set(title=f"{kind}, {activation}", xlabel="‖∇L‖ (log)",
               ylabel="|L − LB| (log; 0 at 1e-18)" if i % 2 == 0 else "")
    return finish(fig, axes, png, "L − LB → 0 as ‖∇L‖ → 0 (claim B2)", ncol=2)
