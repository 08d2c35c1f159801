"""Legible figures: no two texts of a figure overlap, nor a legend any text not its own.

The check itself (figures.style.overlaps) is tested first on small hand-made figures, one per verdict; then every
figure command of the pipeline (cli.COMMANDS' `figure-*`) is run again, as the shared test DAG run (fixture
`workdir` in conftest.py) ran it, with Figure.savefig wrapped so that every figure is checked as it is saved,
whichever module draws it and however it reaches savefig.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.transforms import offset_copy

from conftest import snakemake
from globalmin import cli
from globalmin.figures.style import log_axis, overlaps


def _panels(count: int = 1) -> tuple[plt.Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(1, count, figsize=(6, 3), layout="constrained", squeeze=False)
    return fig, list(axes.flat)


def test_a_clean_figure_passes():
    fig, (left, right) = _panels(2)
    for ax in (left, right):
        ax.plot([1, 2, 3], [1, 4, 9], label="squares")
        ax.set(title="a panel", xlabel="x", ylabel="y")
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", title="legend")
    assert overlaps(fig) == []
    plt.close(fig)


def test_two_texts_on_each_other_are_found():
    fig, (ax,) = _panels()
    ax.text(0.5, 0.5, "first note", transform=ax.transAxes)
    ax.text(0.52, 0.5, "second note", transform=ax.transAxes)
    assert overlaps(fig) == ["text in panel 1 'first note' overlaps text in panel 1 'second note'"]
    plt.close(fig)


def test_a_y_label_longer_than_its_panel_runs_into_the_next_row():
    fig, axes = plt.subplots(2, 1, figsize=(4, 3), layout="constrained")
    for ax in axes:
        ax.set_ylabel("a y label far longer than the panel is high")
    found = overlaps(fig)
    assert "y label of panel 1 'a y label far longer than the panel is high' overlaps y label of panel 2" in found[0]
    plt.close(fig)


def test_a_legend_on_the_tick_labels_is_found():
    fig, (ax,) = _panels()
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend(loc="upper left", bbox_to_anchor=(0.3, 0.02))  # hangs below the axes, over the x tick labels
    found = overlaps(fig)
    assert found and all(f.startswith("x tick label of panel 1") and f.endswith("overlaps legend 'a line'")
                         for f in found)
    plt.close(fig)


def test_only_drawn_texts_count():
    fig, (ax,) = _panels()
    ax.text(0.5, 0.5, "shown", transform=ax.transAxes)
    ax.text(0.5, 0.5, "hidden", transform=ax.transAxes, visible=False)
    ax.set_xticks([0.5, 5, 6], ["mid", "beyond the view", "also beyond"])
    ax.set_xlim(0, 1)  # the last two ticks now lie outside the view, so they are not drawn
    assert overlaps(fig) == []
    ax.set_axis_off()
    ax.text(0.5, -0.05, "where the tick labels were", transform=ax.transAxes)
    assert overlaps(fig) == []
    plt.close(fig)


def test_texts_that_only_touch_pass():
    fig, (ax,) = _panels()
    first = ax.text(0.1, 0.5, "left", transform=ax.transAxes)
    fig.draw_without_rendering()
    width = first.get_window_extent().width
    # the same anchor, moved right by the first text's width less half a pixel: within the tolerance
    ax.text(0.1, 0.5, "right", transform=offset_copy(ax.transAxes, fig, x=width - 0.5, units="dots"))
    assert overlaps(fig) == []
    assert len(overlaps(fig, tolerance=0.0)) == 1
    plt.close(fig)


def _log_panel(low: float, high: float, tidy: bool) -> tuple[plt.Figure, plt.Axes]:
    """A short panel (as in a figure of two or three rows), its log y axis from `low` to `high`, by log_axis or
    plain matplotlib."""
    fig, (ax,) = _panels()
    fig.set_size_inches(3.5, 1.5)
    ax.plot([1, 2], [low, high])
    log_axis(ax) if tidy else ax.set_yscale("log")
    ax.set_ylim(low, high)
    return fig, ax


def _minor_labels(fig: plt.Figure, ax: plt.Axes) -> list[float]:
    fig.draw_without_rendering()
    low, high = ax.get_ylim()
    return [t.get_position()[1] for t in ax.yaxis.get_minorticklabels()
            if t.get_text() and low <= t.get_position()[1] <= high]


def test_log_axes_keep_their_tick_labels_apart():
    # within one power of ten, matplotlib's own ticks crowd a short panel; log_axis's keep apart, two or more
    fig, _ = _log_panel(0.56, 1.4, tidy=False)
    assert any("y tick label" in line for line in overlaps(fig))
    fig, ax = _log_panel(0.56, 1.4, tidy=True)
    assert overlaps(fig) == [] and len(_minor_labels(fig, ax)) >= 2
    # across a power of ten or so, the labels between them fall at 2 and 5 times a power of ten
    fig, _ = _log_panel(2e-3, 4.7e-2, tidy=False)
    assert any("y tick label" in line for line in overlaps(fig))
    fig, ax = _log_panel(2e-3, 4.7e-2, tidy=True)
    labels = _minor_labels(fig, ax)
    assert overlaps(fig) == [] and labels and {round(v / 10 ** math.floor(math.log10(v))) for v in labels} <= {2, 5}
    # across ten powers of ten or more, no minor ticks at all
    fig, ax = _log_panel(1e-20, 1.0, tidy=True)
    assert list(ax.yaxis.get_minor_locator()()) == []
    plt.close("all")


# Runs one figure command as the pipeline does and prints, as JSON, the overlaps of every figure it saved.
PROBE = r"""
import json, re, sys
from pathlib import Path
from matplotlib.figure import Figure
from globalmin import cli
from globalmin.figures.style import log_axis, overlaps

found, savefig = {}, Figure.savefig

def checked(fig, fname, *args, **kwargs):
    name = re.sub(r"^\.|\.\w+\.tmp$", "", Path(fname).name)  # runinfo.atomic_write's temporary name, undone
    if all(fig is not seen for seen, _ in found.values()):  # its PNG and its PDF: the same figure, checked once
        found[name] = (fig, overlaps(fig))
    return savefig(fig, fname, *args, **kwargs)

Figure.savefig = checked
code = cli.main(sys.argv[1:])
print(json.dumps({"rc": code, "figures": {name: problems for name, (_, problems) in found.items()}}))
"""


def figure_commands(work: Path) -> dict[str, list[str]]:
    """The arguments of every `globalmin figure-*` job of the DAG run in `work`, by command (Snakemake's detailed
    summary lists each output file with the shell command that wrote it)."""
    done = snakemake(work, "--configfile", "config/test.yaml", "--detailed-summary")
    assert done.returncode == 0, done.stderr[-2000:]
    commands = {}
    for row in csv.DictReader(io.StringIO(done.stdout), delimiter="\t"):
        words = shlex.split(row["shellcmd"] or "")
        if words[:1] == ["globalmin"] and words[1].startswith("figure-"):
            commands[words[1]] = words[1:words.index(">")] if ">" in words else words[1:]
    return commands


def redirect(argv: list[str], out_dir: Path) -> list[str]:
    """`argv` with its --out-dir replaced: the DAG's own figures stay untouched for the other tests."""
    at = argv.index("--out-dir")
    return [*argv[:at + 1], str(out_dir), *argv[at + 2:]]


@pytest.mark.integration
def test_no_figure_of_the_pipeline_has_overlapping_texts(workdir, tmp_path):
    commands = figure_commands(workdir)
    expected = sorted(name for name in cli.COMMANDS if name.startswith("figure-"))
    assert sorted(commands) == expected, "every figure command must be a job of the DAG to be checked here"
    problems, drawn = [], []
    for name, argv in commands.items():
        done = subprocess.run([sys.executable, "-c", PROBE, *redirect(argv, tmp_path / name)], cwd=workdir,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"
        result = json.loads(done.stdout.splitlines()[-1])
        assert result["rc"] == 0 and result["figures"], f"{name} saved no figure: {done.stderr[-2000:]}"
        for figure, found in result["figures"].items():
            drawn.append(figure)
            problems += [f"{figure}: {line}" for line in found]
    print(f"\nchecked {len(drawn)} figures: {', '.join(sorted(drawn))}")
    assert not problems, f"{len(problems)} overlap(s):\n" + "\n".join(problems)
