"""Figure of the fully-connected theory check: how well-conditioned the wide layer's features are, against m_H / n."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns

from globalmin.figures.style import finish, log_axis, panel_grid, read_inputs

FLOOR = 1e-20  # below float64's resolution of sigma_min / sigma_max (about 1e-16 times n): drawn here


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[Path]:
    """fc_theory.png (+ PDF) from inputs runs= (the study's runs.csv) into out_dir."""
    runs = read_inputs(inputs["inputs"])["runs"]
    frame = runs.assign(ratio=runs.m_H / runs.n, narrow=runs.narrow_width.map("narrow width {}".format),
                        conditioning=np.maximum(runs.sigma_min / runs.sigma_max, FLOOR))
    activations = list(dict.fromkeys(frame.activation))
    fig, axes = panel_grid(len(activations), row_height=2.9, per_row=2)
    tolerance = float((frame.tolerance / frame.sigma_max).median())
    for i, (ax, activation) in enumerate(zip(axes, activations)):
        # the tolerance first: its legend entry then stands in a column of its own, before seaborn's groups
        ax.axhline(tolerance, color="black", linewidth=0.9, label="float64 rank\ntolerance / σ_max")
        sns.lineplot(data=frame[frame.activation == activation], x="ratio", y="conditioning", hue="inputs",
                     style="narrow", estimator="median", errorbar=None, markers=True, ax=ax, palette="colorblind")
        log_axis(ax)
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        outside = " (outside the theory)" if activation == "relu" else ""
        # one y label per row, on two lines: on one it is longer than a panel is high
        ax.set(title=f"{activation}{outside}", xlabel="m_H / n (dotted: m_H = n)",
               ylabel=f"σ_min / σ_max (median)\n0 drawn at {FLOOR:g}" if i % 2 == 0 else "")
    return finish(fig, axes, Path(outputs["out_dir"]) / "fc_theory.png")
