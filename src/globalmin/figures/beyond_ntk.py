"""Figure of the beyond-NTK comparison: the lazy MLPs' movement against width, with the ResNet runs' medians."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import seaborn as sns

from globalmin.figures.style import legend_below, log_axis, panel_grid, read_inputs, save, width_axis

PANELS = [("kernel_distance", "kernel distance 1 − cos(K_0, K_T)\n(scale-free; decides R4)"),
          ("relative_weight_movement", "weight movement ‖W_T − W_0‖_F / ‖W_0‖_F"),
          ("flip_fraction", "fraction of ReLU signs flipped"),
          ("kernel_change", "kernel change ‖K_T − K_0‖_F / ‖K_0‖_F")]


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> list[Path]:
    """beyond_ntk.png (+ PDF) from inputs resnet= (movement runs.csv) and ntk= (NTK runs.csv) into out_dir."""
    tables = read_inputs(inputs["inputs"])
    lazy = tables["ntk"][tables["ntk"].depth == cfg["depth"]].groupby("m", as_index=False).mean(numeric_only=True)
    nets = tables["resnet"].assign(setting=lambda f: f.algorithm + ", " + f.condition + ", "
                                   + f.augment.map({True: "aug", False: "no aug"}))
    medians = nets.groupby("setting").median(numeric_only=True)
    palette = dict(zip(medians.index, sns.color_palette("colorblind", len(medians))))
    fig, axes = panel_grid(len(PANELS), row_height=2.8, per_row=2)
    for ax, (column, label) in zip(axes, PANELS):
        ax.plot(lazy.m, lazy[column], color="black", marker="o", label="lazy MLP of the NTK study (mean of seeds)")
        for name, value in medians[column].items():
            ax.axhline(value, color=palette[name], linestyle="--", linewidth=1.2, label=f"ResNet {name} (median)")
        width_axis(ax, list(lazy.m))
        log_axis(ax)
        ax.set(title=label, xlabel="MLP width m (log)", ylabel="")
    legend_below(fig, axes[0], None, ncol=2)
    return save(fig, Path(outputs["out_dir"]) / "beyond_ntk.png")
