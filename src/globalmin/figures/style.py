"""What every figure shares: its size for the report's page, fonts, labels, and writing PNG + PDF atomically.

The report shows figures at most 72rem (1,152 px) wide. Every figure is drawn PAGE_WIDTH inches wide at DPI,
so its PNG is at most about 1,125 px wide and is shown at its natural size: no text shrinks on the page.
Grids wrap into rows of at most three panels for the same reason.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from globalmin.runinfo import atomic_write  # noqa: E402

PAGE_WIDTH = 7.5  # inches: 1,125 px at DPI, inside the page's 1,152 px
DPI = 150
ALGORITHM_LABELS = {"base": "base", "recipe": "A(base)"}

sns.set_theme(context="paper", style="whitegrid", font_scale=1.15)  # 10-11 pt text: about 21 px at 150 dpi


def panel_grid(count: int, row_height: float = 2.6, per_row: int = 3) -> tuple[plt.Figure, list[plt.Axes]]:
    """A page-wide figure with `count` panels, at most `per_row` to a row; unused axes removed."""
    cols = min(count, per_row)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH, row_height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.remove()
    return fig, flat[:count]


def width_axis(ax: plt.Axes, widths: list[int]) -> None:
    """A log x axis labelled with the widths themselves (64, 128, ...), not crowded powers of ten."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(sorted(widths), [str(int(w)) for w in sorted(widths)])
    ax.xaxis.set_minor_formatter(NullFormatter())


def legend_below(fig: plt.Figure, ax: plt.Axes, title: str | None = None, ncol: int = 4) -> None:
    """Move `ax`'s legend under the whole figure, titled, so it never covers data."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        fig.legend(handles, labels, title=title, loc="lower center", ncol=min(ncol, len(labels)),
                   bbox_to_anchor=(0.5, -0.02), frameon=False)


def finish(fig: plt.Figure, axes: list[plt.Axes], png: str | Path, legend_title: str | None = None, ncol: int = 4,
           bottom: float = 0.08) -> list[Path]:
    """One legend under the figure (the first panel's; the others' removed), the layout above it, then save."""
    legend_below(fig, axes[0], legend_title, ncol)
    for ax in axes[1:]:
        if ax.get_legend():
            ax.get_legend().remove()
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return save(fig, png)


def save(fig: plt.Figure, png: str | Path) -> list[Path]:
    """Save a figure as PNG and as a PDF beside it, atomically, and close it."""
    paths = []
    for path in (Path(png), Path(png).with_suffix(".pdf")):
        paths.append(atomic_write(path, lambda p, fmt=path.suffix[1:]: fig.savefig(
            p, format=fmt, dpi=DPI, bbox_inches="tight", metadata=_stable_metadata(fmt))))
    plt.close(fig)
    return paths


def _stable_metadata(fmt: str) -> dict[str, None]:
    """No creation date or software version in the file: the same figure gives the same bytes."""
    return {"CreationDate": None} if fmt == "pdf" else {"Software": None}


def read_inputs(items: list[str]) -> dict[str, pd.DataFrame]:
    """NAME=PATH pairs of CSV tables, read."""
    pairs = dict(item.split("=", 1) for item in items)
    return {name: pd.read_csv(path) for name, path in pairs.items()}


def setting(frame: pd.DataFrame) -> pd.Series:
    """Panel label of each row: '<data set>, aug' or '<data set>, no aug'."""
    return frame.dataset + ", " + frame.augment.map({True: "aug", False: "no aug"})
