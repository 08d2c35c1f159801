"""Figures of the Recipe replication, drawn with seaborn from the aggregated tables (PNG + PDF)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from globalmin.aggregate import ALGORITHM_LABELS  # noqa: E402
from globalmin.runinfo import atomic_write  # noqa: E402

METRIC_LABELS = {"train_objective": "training objective (log)", "test_error": "test error (%)"}


def save(fig: plt.Figure, png: str | Path) -> list[Path]:
    """Save a figure as PNG and as a PDF beside it, atomically, and close it."""
    paths = []
    for path in (Path(png), Path(png).with_suffix(".pdf")):
        paths.append(atomic_write(path, lambda p, fmt=path.suffix[1:]: fig.savefig(p, format=fmt, dpi=150,
                                                                                     bbox_inches="tight")))
    plt.close(fig)
    return paths


def _setting(frame: pd.DataFrame) -> pd.Series:
    """Panel label of each row: '<data set>, augmentation on|off'."""
    return frame.dataset + ", augmentation " + frame.augment.map({True: "on", False: "off"})


def plot_curves(curves: pd.DataFrame, png: str | Path) -> list[Path]:
    """Training objective and test error against epochs, base vs A(base), mean and sd over seeds, tau marked."""
    curves = curves[~curves.tau_ablation.astype(bool)]
    long = curves.melt(id_vars=["dataset", "augment", "algorithm", "seed", "epoch", "tau_epoch"],
                       value_vars=list(METRIC_LABELS), var_name="metric")
    long["algorithm"] = long.algorithm.map(ALGORITHM_LABELS)
    long["run"] = _setting(long)
    grid = sns.relplot(data=long, x="epoch", y="value", hue="algorithm", style="algorithm", row="metric",
                       col="run", kind="line", errorbar=("pi", 100), height=2.8, aspect=1.4,
                       facet_kws={"sharey": "row", "sharex": "col"})
    for (metric, run), ax in grid.axes_dict.items():
        if metric == "train_objective":
            ax.set_yscale("log")
        tau = long.loc[long.run == run, "tau_epoch"].iloc[0]
        ax.axvline(tau, color="grey", linestyle=":", linewidth=1)
        ax.text(tau, 1.0, " τ", transform=ax.get_xaxis_transform(), va="top", color="grey")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_title(run if metric == "train_objective" else "")
    return save(grid.figure, png)


def plot_phase2(curves: pd.DataFrame, png: str | Path) -> list[Path]:
    """Zoom on phase 2: training objective from tau to T, one line per seed, base and A(base) side by side."""
    late = curves[(curves.epoch >= curves.tau_epoch) & ~curves.tau_ablation.astype(bool)].copy()
    late["algorithm"] = late.algorithm.map(ALGORITHM_LABELS)
    late["run"] = _setting(late)
    grid = sns.relplot(data=late, x="epoch", y="train_objective", hue="algorithm", style="algorithm",
                       units="seed", estimator=None, col="run", kind="line", marker="o", height=2.8, aspect=1.3,
                       facet_kws={"sharey": False, "sharex": False}, alpha=0.8)
    grid.set_ylabels("training objective")
    grid.set_titles("{col_name}")
    return save(grid.figure, png)


def plot_fc_theory(runs: pd.DataFrame, png: str | Path) -> list[Path]:
    """Fully-connected theory check: σ_min / σ_max against m_H / n, per activation, inputs and narrow width."""
    frame = runs.copy()
    frame["m_H / n"] = frame.m_H / frame.n
    frame["σ_min / σ_max"] = (frame.sigma_min / frame.sigma_max).clip(lower=1e-20)
    grid = sns.relplot(data=frame, x="m_H / n", y="σ_min / σ_max", hue="inputs", style="inputs",
                       col="activation", row="narrow_width", kind="line", estimator="median", errorbar=("pi", 100),
                       markers=True, height=2.2, aspect=1.2, facet_kws={"sharey": True})
    for ax in grid.axes.flat:
        ax.set_yscale("log")
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.axhline(float((frame.tolerance / frame.sigma_max).median()), color="black", linewidth=0.8)
    grid.set_titles("{col_name}, narrow width {row_name}")
    return save(grid.figure, png)


def plot_ntk(runs: pd.DataFrame, depth: int, png: str | Path) -> list[Path]:
    """NTK study: weight movement, flip fraction, kernel change and rate ratio against width m (log-log)."""
    import numpy as np

    width = runs[runs.depth == depth].assign(rate_ratio=lambda f: f.measured_log_rate / f.predicted_log_rate)
    panels = [("weight_movement", "‖W_T − W_0‖_F", -0.5), ("flip_fraction", "fraction of ReLU signs flipped", -1 / 3),
              ("kernel_change", "‖K_T − K_0‖_F / ‖K_0‖_F", -0.5), ("rate_ratio", "measured / predicted log-rate", 0)]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, (column, label, predicted) in zip(axes, panels):
        sns.scatterplot(data=width, x="m", y=column, hue="seed", palette="deep", ax=ax, legend=ax is axes[0])
        ax.set_xscale("log")
        if column != "rate_ratio":
            ax.set_yscale("log")
            slope, intercept = np.polyfit(np.log(width.m), np.log(width[column]), 1)
            grid = np.geomspace(width.m.min(), width.m.max(), 20)
            ax.plot(grid, np.exp(intercept) * grid ** slope, color="black", linewidth=1,
                    label=f"fit: slope {slope:.2f} (theory {predicted:.2f})")
            ax.legend(fontsize="x-small")
        else:
            ax.axhline(1.0, color="grey", linestyle=":")
        ax.set_ylabel(label)
        ax.set_xlabel("width m")
    fig.tight_layout()
    return save(fig, png)


def plot_sigma_min(runs: pd.DataFrame, png: str | Path) -> list[Path]:
    """σ_min of the wide-layer features at tau, one point per A(base) run, with the rank tolerance."""
    certs = runs[(runs.algorithm == "recipe") & ~runs.tau_ablation.astype(bool)].copy()
    certs["run"] = _setting(certs)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    sns.stripplot(data=certs, x="run", y="cert_sigma_min", hue="seed", palette="deep", size=7, jitter=0.15, ax=ax)
    sns.scatterplot(data=certs, x="run", y="cert_tolerance", marker="_", s=600, color="black",
                    label="rank tolerance", ax=ax)
    ax.set_yscale("log")
    ax.set_xlabel("")
    ax.set_ylabel("σ_min of features at τ")
    ax.legend(fontsize="small", ncols=2, title="seed", title_fontsize="small")
    return save(fig, png)
