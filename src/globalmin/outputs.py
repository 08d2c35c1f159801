"""The names of the tables and figures the pipeline writes, said once: the rules declare them, the stages write them
and the report shows them from these lists. Torch- and pandas-free (the Snakefile imports it)."""

from __future__ import annotations

# results/tables/, written by the aggregate stage
TABLES = ("runs.csv", "curves.csv", "horizon.csv", "table1.csv", "table1.html", "table1.tex", "conditions.csv",
          "conditions.html", "sweep.csv", "sweep.html")
# copied beside report/index.html
REPORT_TABLES = ("table1.csv", "table1.html", "table1.tex", "runs.csv", "conditions.csv", "sweep.csv")
# report/figures/<name>.png and .pdf, per figure command (figure-<key>), in the report's order
FIGURES = {
    "recipe": ("curves", "phase2", "gap", "sigma_min"),
    "sweep": ("sweep", "sweep_horizon"),
    "fc-theory": ("fc_theory",),
    "ntk": ("ntk",),
    "beyond-ntk": ("beyond_ntk",),
    "local-minima": ("local_minima", "local_minima_gap"),
}


def figure_names() -> list[str]:
    """Every figure's name, in the report's order."""
    return [name for names in FIGURES.values() for name in names]
