"""What every figure shares: its size for the report's page, fonts, labels, and writing PNG + PDF atomically.

The report shows figures at most 72rem (1,152 px) wide. Every figure is drawn PAGE_WIDTH inches wide at DPI,
so its PNG is at most about 1,125 px wide and is shown at its natural size: no text shrinks on the page.
Grids wrap into rows of at most three panels for the same reason. Their layout is matplotlib's constrained
layout, with the legend in a band of its own under the panels; `overlaps` lists any texts that still collide
(tests/test_figures.py runs it on every figure the pipeline saves; docs/figures.md).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import Locator, LogFormatterSciNotation, MaxNLocator, NullFormatter  # noqa: E402

from globalmin.runinfo import atomic_write  # noqa: E402

PAGE_WIDTH = 7.5  # inches: 1,125 px at DPI, inside the page's 1,152 px
DPI = 150
ALGORITHM_LABELS = {"base": "base", "recipe": "A(base)"}

sns.set_theme(context="paper", style="whitegrid", font_scale=1.15)  # 10-11 pt text: about 21 px at 150 dpi


def panel_grid(count: int, row_height: float = 2.6, per_row: int = 3) -> tuple[plt.Figure, list[plt.Axes]]:
    """A page-wide figure with `count` panels, at most `per_row` to a row; unused axes removed. Its layout is
    matplotlib's constrained layout: labels, titles and a legend placed "outside" get room of their own."""
    cols = min(count, per_row)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH, row_height * rows), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.remove()
    return fig, flat[:count]


def width_axis(ax: plt.Axes, widths: list[int]) -> None:
    """A log x axis labelled with the widths themselves (64, 128, ...), not crowded powers of ten."""
    ax.set_xscale("log")
    ax.set_xticks(sorted(widths), [str(int(w)) for w in sorted(widths)])
    ax.xaxis.set_minor_formatter(NullFormatter())


def log_axis(ax: plt.Axes, which: str = "y") -> None:
    """A log axis with matplotlib's ticks at the powers of ten and LogMinor's between them, labelled (by
    matplotlib's rule) only where the view holds at most one power of ten."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_minor_locator(LogMinor())
    axis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(1, math.inf)))


class LogMinor(Locator):
    """Minor ticks of a log axis: at 2 and 5 times each power of ten (or at 2 alone), or, where the view holds
    fewer than two ticks in all, the most evenly spaced ones that keep a tick label's room (matplotlib's tick
    space) from each other; those within that room of a major tick are left out. Why not LogLocator: between
    powers of ten it puts 2, 3, 4 and 6 times them, or nine evenly spaced ticks whatever the axis' length, and on
    a short panel their labels collide (tests/test_figures.py shows both)."""

    def __call__(self) -> list[float]:
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        vmin, vmax = sorted((vmin, vmax))
        if vmin <= 0 or vmax <= vmin or vmax / vmin > 1e10:
            return []  # an empty view, or ten powers of ten or more: the major ticks alone, as matplotlib does
        powers = range(math.floor(math.log10(vmin)), math.ceil(math.log10(vmax)) + 1)
        if sum(vmin <= t <= vmax for e in powers for t in (10.0 ** e, 2 * 10.0 ** e, 5 * 10.0 ** e)) >= 2:
            candidates = [[m * 10.0 ** e for e in powers for m in subs] for subs in ((2, 5), (2,))]
        else:
            candidates = [list(MaxNLocator(nbins=n).tick_values(vmin, vmax)) for n in range(9, 0, -1)]
        spaced = (self._spaced(ticks, vmin, vmax) for ticks in candidates)
        return next((ticks for ticks in spaced if ticks is not None), [])

    def _spaced(self, ticks: list[float], vmin: float, vmax: float) -> list[float] | None:
        """The ticks inside the view but not within a label's room of a major tick, or None where two of them are
        closer than that (positions as fractions of the axis' length)."""
        def at(v: float) -> float:
            return math.log(v / vmin) / math.log(vmax / vmin)

        room = 1 / max(self.axis.get_tick_space(), 1)
        majors = [at(v) for v in self.axis.get_majorticklocs() if vmin <= v <= vmax]
        kept = [t for t in ticks if vmin <= t <= vmax and all(abs(at(t) - m) >= room for m in majors)]
        return kept if all(at(b) - at(a) >= room for a, b in itertools.pairwise(kept)) else None


def legend_below(fig: plt.Figure, ax: plt.Axes, title: str | None = None, ncol: int = 4) -> None:
    """Move `ax`'s legend under the whole figure, titled, in a band the constrained layout keeps for it below the
    panels' labels, so it never covers data or text. Where seaborn wrote subtitle entries (the hue and style
    names, with handles that draw nothing), each subtitle's group becomes one column."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if not handles:
        return
    groups = _groups(list(zip(handles, labels)))
    if len(groups) > 1:
        rows = max(map(len, groups))
        blank = (Line2D([], [], visible=False), "")
        handles, labels = zip(*[entry for group in groups for entry in group + [blank] * (rows - len(group))])
        ncol = len(groups)
    fig.legend(handles, labels, title=title, loc="outside lower center", ncol=min(ncol, len(labels)),
               frameon=False)


def _groups(entries: list[tuple[Artist, str]]) -> list[list[tuple[Artist, str]]]:
    """Legend entries split before each subtitle entry."""
    groups: list[list[tuple[Artist, str]]] = []
    for handle, label in entries:
        if not groups or _draws_nothing(handle):
            groups.append([])
        groups[-1].append((handle, label))
    return groups


def _draws_nothing(handle: Artist) -> bool:
    """Whether a legend handle is blank: how seaborn 0.13 marks a subtitle (a line of width 0 without a marker, or
    a scatter of size 0; `visible=False` in other versions)."""
    if not handle.get_visible():
        return True
    if isinstance(handle, Line2D):
        return handle.get_linewidth() == 0 and handle.get_marker() in ("", " ", "None", None)
    sizes = getattr(handle, "get_sizes", lambda: None)()
    return sizes is not None and len(sizes) > 0 and not any(sizes)


def finish(fig: plt.Figure, axes: list[plt.Axes], png: str | Path, legend_title: str | None = None,
           ncol: int = 4) -> list[Path]:
    """One legend under the figure (the first panel's; the others' removed), then save."""
    legend_below(fig, axes[0], legend_title, ncol)
    for ax in axes[1:]:
        if ax.get_legend():
            ax.get_legend().remove()
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
