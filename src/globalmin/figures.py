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


def plot_beyond_ntk(resnet: pd.DataFrame, lazy: pd.DataFrame, depth: int, png: str | Path) -> list[Path]:
    """Beyond NTK: weight movement, ReLU flips and kernel change of the ResNet runs beside the lazy MLPs (log y)."""
    mlp = lazy[lazy.depth == depth].assign(model=lambda f: "MLP m=" + f.m.astype(str), kind="lazy MLP (NTK study)")
    nets = resnet.assign(model=lambda f: f.algorithm + ", " + f.dataset + " " + f.augment.map({True: "aug",
                                                                                                False: "noaug"}),
                         kind="Recipe ResNet run")
    frame = pd.concat([mlp, nets], ignore_index=True)
    panels = [("relative_weight_movement", "‖W_T − W_0‖_F / ‖W_0‖_F"), ("flip_fraction", "fraction of ReLU signs flipped"),
              ("kernel_change", "‖K_T − K_0‖_F / ‖K_0‖_F"), ("kernel_distance", "1 − cos(K_0, K_T) (scale-free)")]
    panels = [p for p in panels if p[0] in frame]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.7 * len(panels), 3.8))
    for ax, (column, label) in zip(axes, panels):
        sns.stripplot(data=frame, x="model", y=column, hue="kind", palette="deep", ax=ax, legend=ax is axes[0],
                      jitter=0.15, size=4)
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelrotation=60, labelsize="x-small")
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


def plot_local_minima(runs: pd.DataFrame, png: str | Path) -> list[Path]:
    """Local minima (B1-B4): final loss against width per depth with the OLS and random-feature baselines,
    and L − LB against ||grad L|| at both ends of every run; one column per data set and activation."""
    import numpy as np

    frame = runs.copy()
    for column in ("certified", "collapsed"):
        frame[column] = frame[column].astype(bool)
    # log axes cannot show 0: interpolating runs (L ~ 1e-20) are drawn at 1e-10 of the zero predictor's loss
    frame["loss_plot"] = np.maximum(frame.loss, 1e-10 * frame.zero_loss)
    frame["depth"] = frame.depth.astype(str)
    panels = sorted(frame.groupby(["data", "activation"]).groups)
    fig, axes = plt.subplots(2, len(panels), figsize=(4.3 * len(panels), 7.4), squeeze=False)
    for col, (kind, activation) in enumerate(panels):
        part = frame[(frame.data == kind) & (frame.activation == activation)]
        ax = axes[0, col]
        good = part[part.certified & ~part.collapsed]
        if len(good):
            sns.lineplot(data=good, x="width", y="loss_plot", hue="depth", marker="o", estimator="median",
                         errorbar=None, palette="deep", hue_order=sorted(frame.depth.unique()), ax=ax)
        loose = part[~part.certified & ~part.collapsed]
        ax.scatter(loose.width, loose.loss_plot, facecolors="none", edgecolors="grey", s=22,
                   label="not certified (||∇L|| > tol)")
        dead = part[part.collapsed]
        ax.scatter(dead.width, dead.loss_plot, marker="x", color="red", s=40, label="collapsed (dead net)")
        ax.axhline(float(part.ols_loss.iloc[0]), color="black", linestyle="--", linewidth=1, label="OLS on [X, 1]")
        rf = part.groupby("width").rf_loss.first()
        ax.plot(rf.index, rf.to_numpy(), color="grey", linestyle=":", marker="s", markersize=3,
                label="random-feature LS (same width)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(part.width.unique()), [str(w) for w in sorted(part.width.unique())])
        ax.set_yscale("log")
        ax.set_title(f"{kind}, {activation}: certified loss (median over seeds)", fontsize="small")
        ax.set_xlabel("width")
        ax.set_ylabel("final loss L (log; 0 drawn at 1e-10 ½‖y‖²)" if col == 0 else "")
        ax.legend(fontsize="xx-small", title="depth (certified runs)", title_fontsize="xx-small")
        ax = axes[1, col]
        for prefix, label, style in (("first_", "after the first-order phase", {"facecolors": "none"}),
                                     ("", "after polishing", {})):
            gap = np.maximum(part[f"{prefix}gap"].abs(), 1e-18)
            ax.scatter(part[f"{prefix}grad_norm"].clip(lower=1e-16), gap, s=16, edgecolors="C0", label=label,
                       color="C0" if not style else None, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("‖∇L‖")
        ax.set_ylabel("L − LB (log)" if col == 0 else "")
        ax.set_title("gap to the projection bound against the gradient", fontsize="small")
        ax.legend(fontsize="xx-small")
    fig.suptitle("Local minima against the projection bound LB = ½‖(I − P[J]) y‖² (Kawaguchi, Huang & Kaelbling)",
                 fontsize="medium")
    fig.tight_layout()
    return save(fig, png)
