"""Figure of the NTK study: weight movement, ReLU flips, kernel change and the convergence rate against width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns

from globalmin.figures.style import finish, log_axis, panel_grid, read_inputs, width_axis

PANELS = [("weight_movement", "weight movement ‖W_T − W_0‖_F", -0.5),
          ("flip_fraction", "fraction of ReLU signs flipped", -1 / 3),
          ("kernel_change", "kernel change ‖K_T − K_0‖_F / ‖K_0‖_F", -0.5),
          ("rate_ratio", "measured / predicted log-rate of the loss", 0.0)]


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[Path]:
    """ntk.png (+ PDF) from inputs runs= (the study's runs.csv) at cfg depth into out_dir."""
    runs = read_inputs(inputs["inputs"])["runs"]
    width = runs[runs.depth == cfg["depth"]].assign(rate_ratio=lambda f: f.measured_log_rate / f.predicted_log_rate,
                                                    seed=lambda f: f.seed.astype(str))
    fig, axes = panel_grid(len(PANELS), row_height=2.8, per_row=2)
    for ax, (column, label, predicted) in zip(axes, PANELS):
        sns.scatterplot(data=width, x="m", y=column, hue="seed", palette="colorblind", ax=ax, s=30)
        width_axis(ax, list(width.m.unique()))
        if column != "rate_ratio":
            log_axis(ax)
            slope, intercept = np.polyfit(np.log(width.m), np.log(width[column]), 1)
            grid = np.geomspace(width.m.min(), width.m.max(), 20)
            ax.plot(grid, np.exp(intercept) * grid ** slope, color="black", linewidth=1)
            ax.text(0.98, 0.95, f"fitted slope {slope:.2f}\ntheory {predicted:.2f}", transform=ax.transAxes,
                    ha="right", va="top", fontsize="small")
        else:
            ax.axhline(1.0, color="grey", linestyle=":")
        ax.set(title=label, xlabel="width m (log)", ylabel="")
    return finish(fig, axes, Path(outputs["out_dir"]) / "ntk.png", f"seed (depth {cfg['depth']}; black: log-log fit)",
                  ncol=5)
