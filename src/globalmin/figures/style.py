"""What every figure shares: its size for the report's page, fonts, labels, and writing PNG + PDF atomically.

The report shows figures at most 72rem (1,152 px) wide. Every figure is drawn PAGE_WIDTH inches wide at DPI,
so its PNG is at most about 1,125 px wide and is shown at its natural size: no text shrinks on the page.
Grids wrap into rows of at most three panels for the same reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.text import Text  # noqa: E402

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


def overlaps(fig: plt.Figure, tolerance: float = 1.0) -> list[str]:
    """Every pair of drawn texts (titles, axis and tick labels, annotations) and legends (each as its whole box:
    entries, handles and title) whose boxes overlap by more than `tolerance` pixels both ways, one line each."""
    renderer = fig.canvas.get_renderer()
    with _recording_texts() as drawn:
        fig.draw(renderer)  # runs the layout engine too: the positions savefig will write
    texts = [t for t in dict.fromkeys(drawn) if t.get_text().strip()]
    legends = [lg for lg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
               if lg is not None and {*lg.get_texts(), lg.get_title()} & set(texts)]
    own = {t for lg in legends for t in (*lg.get_texts(), lg.get_title())}
    names = _describe(fig, texts)
    items = [(names[t], t.get_window_extent(renderer)) for t in texts if t not in own]
    items += [(f"legend {(lg.get_title().get_text() or lg.texts[0].get_text())!r}", lg.get_window_extent(renderer))
              for lg in legends]
    return [f"{a} overlaps {b}" for i, (a, box_a) in enumerate(items) for b, box_b in items[i + 1:]
            if _overlap(box_a, box_b, tolerance)]


@contextlib.contextmanager
def _recording_texts() -> Iterator[list[Text]]:
    """Note every Text the renderer draws while the block runs. Why not walk the artist tree: whether a text is
    drawn (its tick inside the view, its axes switched on, its legend present) is decided in each draw method."""
    drawn: list[Text] = []
    original = Text.draw

    def draw(self: Text, renderer) -> None:
        if self.get_visible():
            drawn.append(self)
        return original(self, renderer)

    Text.draw = draw
    try:
        yield drawn
    finally:
        Text.draw = original


def _overlap(a, b, tolerance: float) -> bool:
    """Whether two display boxes share more than `tolerance` pixels in both directions."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance)


def _describe(fig: plt.Figure, texts: list[Text]) -> dict[Text, str]:
    """Each text as the failure message names it: its role, its panel (by title) and its string."""
    roles: dict[Text, str] = {}
    for i, ax in enumerate(fig.axes):
        panel = f"panel {i + 1} {ax.get_title()!r}" if ax.get_title() else f"panel {i + 1}"
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            roles.update((t, f"{name} tick label of {panel}") for t in axis.get_ticklabels(which="both"))
            roles[axis.label] = f"{name} label of {panel}"
            roles[axis.get_offset_text()] = f"{name} offset text of {panel}"
        roles[ax.title] = f"title of {panel}"
        roles.update((t, f"text in {panel}") for t in ax.texts)
    return {t: f"{roles.get(t, 'text')} {t.get_text()!r}" for t in texts}
