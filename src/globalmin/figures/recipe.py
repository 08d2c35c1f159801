"""The Recipe's figures: training curves of Table 1's runs, phase 2 per seed, the gap to phase 2's optimum for
every condition, and the certificates at tau against their tolerances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from globalmin.figures.style import ALGORITHM_LABELS, finish, log_axis, panel_grid, read_inputs, save, setting

METRICS = {"train_objective": "training objective\n(mean cross-entropy, log)", "test_error": "test error (%)"}


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[Path]:
    """curves.png, phase2.png, gap.png and sigma_min.png (+ PDF) from inputs runs= and curves= into out_dir."""
    tables = read_inputs(inputs["inputs"])
    out = Path(outputs["out_dir"])
    runs, curves = tables["runs"], tables["curves"]
    return (plot_curves(curves, out / "curves.png") + plot_phase2(curves, out / "phase2.png")
            + plot_gap(curves, out / "gap.png") + plot_sigma_min(runs, out / "sigma_min.png"))


def table1_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of Table 1's runs: the standard condition at the main tau."""
    return frame[(frame.condition == "standard") & ~frame.tau_ablation.astype(bool)]


def plot_curves(curves: pd.DataFrame, png: Path) -> list[Path]:
    """Objective and test error against epochs, base vs A(base), mean and range over seeds, tau marked."""
    frame = table1_rows(curves).assign(algorithm=lambda f: f.algorithm.map(ALGORITHM_LABELS),
                                       panel=lambda f: setting(f))
    panels = sorted(frame.panel.unique())
    fig, axes = panel_grid(2 * len(panels), row_height=2.5, per_row=2)
    for i, panel in enumerate(panels):
        part = frame[frame.panel == panel]
        for j, (metric, label) in enumerate(METRICS.items()):
            ax = axes[2 * i + j]
            sns.lineplot(data=part, x="epoch", y=metric, hue="algorithm", style="algorithm", errorbar=("pi", 100),
                         ax=ax, hue_order=["base", "A(base)"])
            if metric == "train_objective":
                log_axis(ax)
            tau = part.tau_epoch.iloc[0]
            ax.axvline(tau, color="grey", linestyle=":", linewidth=1)
            ax.text(tau, 1.0, " τ", transform=ax.get_xaxis_transform(), va="top", color="grey")
            ax.set(title=panel, xlabel="epoch", ylabel=label)
    return finish(fig, axes, png, "algorithm (line: mean over seeds; band: range)")


def plot_phase2(curves: pd.DataFrame, png: Path) -> list[Path]:
    """Phase 2 of Table 1's runs: training objective from tau to T, one colour per seed, base dashed."""
    frame = table1_rows(curves)
    frame = frame[frame.epoch >= frame.tau_epoch].assign(algorithm=lambda f: f.algorithm.map(ALGORITHM_LABELS),
                                                         panel=lambda f: setting(f),
                                                         seed=lambda f: f.seed.astype(str))
    panels = sorted(frame.panel.unique())
    fig, axes = panel_grid(len(panels), row_height=3.0, per_row=2)
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        sns.lineplot(data=frame[frame.panel == panel], x="epoch", y="train_objective", hue="seed",
                     style="algorithm", style_order=["A(base)", "base"], units="seed", estimator=None, marker="o",
                     markersize=4, ax=ax, palette="colorblind")
        # one y label per row: the panels share the quantity, and a second label would crowd the gap between them
        ax.set(title=panel, xlabel="epoch", ylabel="training objective\n(mean cross-entropy)" if i % 2 == 0 else "")
    return finish(fig, axes, png)


def plot_gap(curves: pd.DataFrame, png: Path) -> list[Path]:
    """Gap L(W_t) - L* to phase 2's exact optimum against epochs, per condition, one colour per tau, every seed."""
    if "gap" not in curves or curves.gap.isna().all():
        fig, axes = panel_grid(1)
        axes[0].text(0.5, 0.5, "no phase-2 problem was solved\n(only runs without augmentation are)",
                     ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
        return save(fig, png)
    frame = curves[(curves.algorithm == "recipe") & curves.gap.notna()].assign(
        tau=lambda f: "τ = " + f.tau_fraction.map("{:g} T".format),
        gap_plot=lambda f: np.maximum(f.gap, 1e-12))
    panels = sorted(frame.condition.unique(), key=lambda c: (c != "standard", c))
    fig, axes = panel_grid(len(panels), row_height=2.7, per_row=2)
    for ax, condition in zip(axes, panels):
        sns.lineplot(data=frame[frame.condition == condition], x="epoch", y="gap_plot", hue="tau", units="seed",
                     estimator=None, ax=ax, palette="viridis", hue_order=sorted(frame.tau.unique()), linewidth=1)
        log_axis(ax)
        ax.set(title=f"{condition} ({frame[frame.condition == condition].dataset.iloc[0]}, no aug)", xlabel="epoch",
               ylabel="L(W_t) − L*  (log)")
    return finish(fig, axes, png, "phase 2 from (one line per seed; gaps below 1e-12 drawn at 1e-12)", ncol=3)


def plot_sigma_min(runs: pd.DataFrame, png: Path) -> list[Path]:
    """sigma_min of the wide-layer features at tau for every A(base) run, against the float64 and float32 rank
    tolerances (a run is certified when its point lies above its float64 tolerance)."""
    certs = runs[runs.algorithm == "recipe"].assign(
        setting=lambda f: f.condition + "\n" + f.augment.map({True: "aug", False: "no aug"}),
        tau=lambda f: "τ = " + f.tau_fraction.map("{:g} T".format))
    certs["tolerance_float32"] = certs.cert_sigma_max * np.maximum(certs.n_train, certs.m_H) * float(
        np.finfo(np.float32).eps)
    certs["sigma_plot"] = np.maximum(certs.cert_sigma_min, 1e-20)
    order = sorted(certs.setting.unique(), key=lambda c: (not c.startswith("standard"), c))
    # settings down the y axis: the width sweep's condition names (sweep_standard_sq_n2) are wider than the slot
    # between two ticks on an x axis
    fig, axes = panel_grid(1, row_height=max(3.6, 1.2 + 0.45 * len(order)))
    ax = axes[0]
    np.random.seed(0)  # seaborn draws the jitter from NumPy's global generator: seeded, the file is byte-stable
    sns.stripplot(data=certs, y="setting", x="sigma_plot", hue="tau", order=order, dodge=True, jitter=0.1, size=5,
                  ax=ax, palette="viridis", orient="h")
    for name, column, marker in (("float64 tolerance (certificate)", "cert_tolerance", "|"),
                                 ("float32 tolerance", "tolerance_float32", "x")):
        level = certs.groupby("setting")[column].median().reindex(order)
        ax.scatter(level.to_numpy(), range(len(order)), marker=marker, s=400 if marker == "|" else 40, color="black"
                   if marker == "|" else "grey", label=name, zorder=3)
    log_axis(ax, "x")
    ax.set(ylabel="", xlabel="σ_min of the features at τ (log; 0 drawn at 1e-20)")
    ax.tick_params(axis="y", labelsize="small")
    return finish(fig, axes, png, ncol=3)
